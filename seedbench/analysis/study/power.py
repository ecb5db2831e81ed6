"""How many seeds a comparison needs, from a pilot: power for a mean difference or a std ratio.

A study that runs 5 seeds per arm and finds "no significant difference" has usually shown that
5 seeds cannot see the effect, not that there is none (Colas et al., 2018, "How many random seeds?").
This module turns a pilot's across-seed spread into seeds per arm:

* mean difference: two-sided two-sample t-test power (statsmodels' ``TTestIndPower``) at the
  pilot's pooled within-arm SD. A pilot SD from few seeds is itself uncertain, so the seeds
  needed at the upper 80% confidence limit of that SD are shown too (Browne 1995): planning
  with the point estimate gives the nominal power only about half the time.
* std ratio: the F-test for equal variances, analytically (S_a^2/S_b^2 ~ R^2 F(n-1, n-1)),
  and the Brown-Forsythe test (what ``compare`` reports as ``bf_p``) by simulation on normal
  data, where it needs more seeds than the F-test because it does not assume normality.
* ``minimal_detectable_effect``: the smallest difference detectable with given n and SD, which
  ``compare`` prints next to every comparison (``minimal_detectable``, one per row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from seedbench.analysis.stats.runs import NAN, finished
from seedbench.errors import ConfigError

ALPHA = 0.05
POWER = 0.8
SD_UPPER_CONFIDENCE = 0.8  # Browne (1995): plan with the 80% upper confidence limit of the pilot SD
MAX_SEEDS = 100_000
N_SIMS = 4000


def pooled_sd(groups: Sequence[np.ndarray]) -> tuple[float, int]:
    """Pooled within-group SD and its degrees of freedom (groups with < 2 values add nothing)."""
    ss, df = 0.0, 0
    for g in groups:
        g = np.asarray(g, dtype=float)
        g = g[np.isfinite(g)]
        if len(g) >= 2:
            ss += float(((g - g.mean()) ** 2).sum())
            df += len(g) - 1
    return (math.sqrt(ss / df) if df else NAN), df


def sd_upper_limit(sd: float, df: int, confidence: float = SD_UPPER_CONFIDENCE) -> float:
    """One-sided upper confidence limit of a normal SD: sd * sqrt(df / chi2_{1-confidence}(df))."""
    if df < 1 or not math.isfinite(sd):
        return NAN
    return sd * math.sqrt(df / stats.chi2.ppf(1 - confidence, df))


def seeds_for_difference(delta: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Seeds per arm for a two-sided two-sample t-test to detect |mean_a - mean_b| = delta."""
    if not (delta > 0 and sd > 0 and math.isfinite(sd)):
        raise ConfigError(
            f"the effect ({delta}) and the pilot SD ({sd}) must both be positive; give --effect > 0 and a pilot with >= 2 seeds per arm"
        )
    n = TTestIndPower().solve_power(effect_size=delta / sd, alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
    return max(2, math.ceil(float(np.squeeze(n)) - 1e-9))


def minimal_detectable_effect(n_a: int, n_b: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest |mean difference| a two-sided two-sample t-test detects with `power` at these n.

    The standardized effect is solved by statsmodels' TTestIndPower and scaled by `sd`. NaN when
    either arm has fewer than 2 runs or the SD is not positive.
    """
    if n_a < 2 or n_b < 2 or not (sd > 0 and math.isfinite(sd)):
        return NAN
    d = TTestIndPower().solve_power(effect_size=None, nobs1=n_a, ratio=n_b / n_a, alpha=alpha, power=power, alternative="two-sided")
    return float(np.squeeze(d)) * sd


def minimal_detectable(comparisons: pd.DataFrame) -> list[float]:
    """Minimal detectable |difference| per row of a compare() table, at its n and pooled SD.

    Shown next to every comparison so that a non-significant difference reads as "smaller than
    about mde, or not detectable with these seeds" rather than "no difference".
    """
    out = []
    for n_a, n_b, s_a, s_b in zip(comparisons["n_a"], comparisons["n_b"], comparisons["std_a"], comparisons["std_b"], strict=True):
        if n_a < 2 or n_b < 2 or math.isnan(s_a) or math.isnan(s_b):
            out.append(NAN)
            continue
        sd = math.sqrt(((n_a - 1) * s_a**2 + (n_b - 1) * s_b**2) / (n_a + n_b - 2))
        out.append(minimal_detectable_effect(int(n_a), int(n_b), sd))
    return out


def power_std_ratio_f(n: int, ratio: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided F-test for equal variances, n per arm, true sigma_a/sigma_b = ratio."""
    d = n - 1
    lo, hi = stats.f.ppf(alpha / 2, d, d), stats.f.isf(alpha / 2, d, d)
    r2 = ratio**2
    # under H1, S_a^2/S_b^2 = r2 * F(d, d)
    return float(stats.f.sf(hi / r2, d, d) + stats.f.cdf(lo / r2, d, d))


def power_std_ratio_bf(n: int, ratio: float, alpha: float = ALPHA, n_sims: int = N_SIMS, seed: int = 0) -> float:
    """Simulated power of the Brown-Forsythe test (Levene, median-centred) on normal data.

    Brown-Forsythe is a one-way ANOVA on |x - median(x)|; scipy's f_oneway is vectorized over the
    simulations, giving the same p-values as scipy.stats.levene(center='median').
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, ratio, (n_sims, n))
    b = rng.normal(0.0, 1.0, (n_sims, n))
    za = np.abs(a - np.median(a, axis=1, keepdims=True))
    zb = np.abs(b - np.median(b, axis=1, keepdims=True))
    p = stats.f_oneway(za, zb, axis=1).pvalue
    return float(np.mean(p < alpha))


def _smallest_n(power_at: Any, target: float, start: int = 2, limit: int = MAX_SEEDS) -> int | None:
    """Smallest n >= start with power_at(n) >= target, by doubling then bisection (power rises with n)."""
    if power_at(start) >= target:
        return start
    lo, hi = start, start * 2
    while power_at(hi) < target:
        lo, hi = hi, hi * 2
        if hi > limit:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def seeds_for_std_ratio(ratio: float, alpha: float = ALPHA, power: float = POWER, test: str = "f", n_sims: int = N_SIMS, seed: int = 0) -> int | None:
    """Seeds per arm to detect sigma_a/sigma_b = ratio with the F-test ('f') or Brown-Forsythe ('bf').

    None when more than MAX_SEEDS would be needed. The simulated 'bf' answer has Monte Carlo error
    (about +-1 seed at n_sims=4000 near the answer); the same seed gives the same answer.
    """
    if not (ratio > 0) or ratio == 1:
        raise ConfigError(f"--std-ratio must be positive and not 1 (got {ratio}); e.g. 0.5 for an arm half as variable")
    if test == "f":
        return _smallest_n(lambda n: power_std_ratio_f(n, ratio, alpha), power, start=3)
    if test == "bf":
        return _smallest_n(lambda n: power_std_ratio_bf(n, ratio, alpha, n_sims, seed), power, start=3, limit=5000)
    raise ValueError(f"unknown test {test!r}; use 'f' or 'bf'")


def _finished_values(part: pd.DataFrame, metric: str, status_col: str) -> np.ndarray:
    part = finished(part, status_col)
    x = pd.to_numeric(part[metric], errors="coerce").to_numpy(dtype=float)
    return x[np.isfinite(x)]


def power_table(
    runs: pd.DataFrame,
    metric: str,
    by: str,
    within: Sequence[str] = (),
    *,
    effect: float | None = None,
    std_ratio: float | None = None,
    alpha: float = ALPHA,
    power: float = POWER,
    status_col: str = "status",
    n_sims: int = N_SIMS,
) -> pd.DataFrame:
    """Per `within` group: the pilot (arms, n, pooled SD) and the seeds per arm for the target effect.

    With `effect`: seeds per arm for a mean difference of `effect` (metric units) at the pilot
    SD and at its 80% upper confidence limit. With `std_ratio`: seeds per arm for the F-test and
    for Brown-Forsythe. With neither: the minimal detectable difference at the pilot's n.
    """
    if effect is not None and std_ratio is not None:
        raise ConfigError("give either --effect or --std-ratio, not both")
    within = [within] if isinstance(within, str) else list(within)
    missing = [c for c in (by, *within) if c not in runs.columns]
    if missing:
        raise ConfigError(f"unknown column(s) {missing}; runs has: {', '.join(map(str, runs.columns))}")
    rows = []
    groups = [((), runs)] if not within else list(runs.groupby(within, sort=True, dropna=False))
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        arms = sorted(pd.unique(group[by].astype(object)), key=str)
        values = {arm: _finished_values(group[group[by].astype(object) == arm], metric, status_col) for arm in arms}
        sd, df = pooled_sd(list(values.values()))
        sizes = [len(v) for v in values.values()]
        row: dict[str, Any] = {
            **dict(zip(within, key)),
            "arms": len(arms),
            "pilot_n": "/".join(map(str, sizes)),
            "pilot_sd": sd,
            "sd_df": df,
            "sd_upper80": sd_upper_limit(sd, df),
            "alpha": alpha,
            "power": power,
        }
        if df < 1:
            row["note"] = "pilot needs >= 2 finished seeds in some arm"
        elif effect is not None:
            row["effect"] = effect
            row["seeds_per_arm"] = seeds_for_difference(effect, sd, alpha, power)
            row["seeds_per_arm_sd_upper80"] = seeds_for_difference(effect, row["sd_upper80"], alpha, power)
            row["test"] = "two-sided two-sample t (TTestIndPower)"
        elif std_ratio is not None:
            row["std_ratio"] = std_ratio
            row["seeds_per_arm_f"] = seeds_for_std_ratio(std_ratio, alpha, power, "f")
            row["seeds_per_arm_bf"] = seeds_for_std_ratio(std_ratio, alpha, power, "bf", n_sims=n_sims)
            row["test"] = f"F-test (analytic); Brown-Forsythe (simulated, normal data, {n_sims} sims)"
        else:
            n_min = min(sizes) if sizes else 0
            row["mde_at_pilot_n"] = minimal_detectable_effect(n_min, n_min, sd, alpha, power)
            row["test"] = "two-sided two-sample t (TTestIndPower); n = smallest arm"
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(metric=metric, by=by, within=within, alpha=alpha, power=power)
    return out
