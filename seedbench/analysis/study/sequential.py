"""Group-sequential seed studies: look at the comparison after every few seeds, stop once it is decided.

Running 50 seeds per arm when 10 already settle the question wastes compute; peeking after every
seed and stopping at the first p < 0.05 inflates the false-positive rate far above 5%. A
group-sequential design does both right: the overall alpha is *spent* over the looks (Lan &
DeMets 1983), so each look tests at a stricter boundary and the chance of any false stop stays at
alpha (Jennison & Turnbull 2000).

* Spending functions (two-sided, total alpha, alpha/2 on each side): O'Brien-Fleming type
  alpha(t) = 2 (2 - 2 Phi(z_{1-alpha/4} / sqrt(t))), which spends almost nothing early and keeps the
  last boundary close to the fixed-sample one; Pocock type alpha(t) = alpha ln(1 + (e - 1) t),
  which spends evenly and stops earlier under large effects but needs more seeds at the end.
* Boundaries: the standardized statistics at information fractions t_1 < ... < t_K are jointly
  normal with Cov(Z_i, Z_j) = sqrt(t_i / t_j) under H0; the exit probability at each look is the
  Armitage-McPherson-Rowe recursive integral of the continuation density (Jennison & Turnbull
  2000, ch. 19), evaluated with Simpson's rule on a grid, and the boundary solves "exit
  probability = alpha spent in this look" (brentq). Checked against published Lan-DeMets values
  and against scipy's multivariate normal CDF in tests/test_study_sequential.py.
* Several arms: every pair is tested, and the family-wise error is controlled by the
  group-sequential Holm procedure (Maurer & Bretz 2013; Ye, Li & Jiang 2013): each open pair is
  tested with the boundaries of level alpha / (pairs not yet rejected); once a pair is rejected
  the others are re-tested, at all looks so far, with the larger level. Equivalently: the Holm
  adjustment of each pair's repeated p-value (the smallest alpha at which its boundaries would
  have been crossed at some look so far), which is what ``p_adj`` reports.
* Statistic: Welch's t-test per pair, turned into a z-score through its p-value
  (z = sign(t) Phi^-1(1 - p/2)), so the small-sample t distribution is respected at each look.
  The information fraction of a look is n_eff / max_seeds with n_eff = 2 n_a n_b / (n_a + n_b)
  (the finished runs of the pair); the last possible look spends all remaining alpha.

The efficacy boundaries only stop for a difference; a pair with no difference runs to max_seeds
(no futility boundary). Type-I error and seeds saved are checked by simulation
(bench/bench_study_sequential.py, figures in docs/statistics.md).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.stats.multitest import multipletests

from seedbench.analysis.stats.runs import finished

SPENDING = ("obf", "pocock")
GRID_POINTS = 201  # Simpson points per look: boundaries for K <= 20 looks agree with 1,601 points to 1e-5
Z_CAP = 40.0  # |z| of a p-value that underflowed to 0


# --------------------------------------------------------------------------------------------
# spending functions and boundaries


def spend(t: float | np.ndarray, alpha: float, kind: str = "obf") -> float | np.ndarray:
    """Cumulative two-sided alpha spent by information fraction t (0 at t=0, alpha at t=1)."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "obf":
        with np.errstate(divide="ignore"):
            # one-sided O'Brien-Fleming-type spending of alpha/2 on each side (as ldbounds and gsDesign)
            out = 4.0 - 4.0 * stats.norm.cdf(stats.norm.isf(alpha / 4) / np.sqrt(t))
    elif kind == "pocock":
        out = alpha * np.log1p((math.e - 1.0) * t)
    else:
        raise ValueError(f"unknown spending function {kind!r}; use one of {', '.join(SPENDING)}")
    return float(out) if out.ndim == 0 else out


def _simpson(lo: float, hi: float, n: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(lo, hi, n)
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return z, w * (hi - lo) / (n - 1) / 3.0


def _exit_probability(c: float, z: np.ndarray, h: np.ndarray, t_prev: float, t: float, drift: float = 0.0) -> float:
    """P(|Z_k| >= c and still running before) given the weighted continuation density h on grid z."""
    delta = t - t_prev
    mean = z * math.sqrt(t_prev) + drift * delta
    sd = math.sqrt(delta)
    upper = stats.norm.sf((c * math.sqrt(t) - mean) / sd)
    lower = stats.norm.cdf((-c * math.sqrt(t) - mean) / sd)
    return float(np.dot(h, upper + lower))


def _continue_density(z_prev: np.ndarray, h: np.ndarray, t_prev: float, t: float, c: float, drift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Grid and Simpson-weighted density of Z_k on (-c, c), from the weighted density h of Z_{k-1}."""
    delta = t - t_prev
    width = min(c, 12.0)
    z, w = _simpson(-width, width)
    sd = math.sqrt(delta)
    kernel = stats.norm.pdf((z[:, None] * math.sqrt(t) - z_prev[None, :] * math.sqrt(t_prev) - drift * delta) / sd) * math.sqrt(t) / sd
    return z, w * (kernel @ h)


@functools.lru_cache(maxsize=4096)
def _boundaries(fractions: tuple[float, ...], alpha: float, kind: str) -> tuple[float, ...]:
    cumulative = [spend(t, alpha, kind) for t in fractions]
    bounds: list[float] = []
    z = h = None
    t_prev = 0.0
    for k, t in enumerate(fractions):
        target = cumulative[k] - (cumulative[k - 1] if k else 0.0)
        if k == 0:
            c = float(stats.norm.isf(target / 2)) if target > 0 else math.inf
            z, w = _simpson(-min(c, 12.0), min(c, 12.0))
            h = w * stats.norm.pdf(z)
        else:
            if target <= 1e-15:
                c = math.inf
            else:
                f = lambda c: _exit_probability(c, z, h, t_prev, t) - target  # noqa: E731
                c = float(optimize.brentq(f, 1e-6, 40.0, xtol=1e-10)) if f(1e-6) > 0 else 1e-6
            z, h = _continue_density(z, h, t_prev, t, c)
        bounds.append(c)
        t_prev = t
    return tuple(bounds)


def boundaries(fractions: Sequence[float], alpha: float = 0.05, kind: str = "obf") -> np.ndarray:
    """Two-sided critical |z| at each look of a Lan-DeMets design with these information fractions."""
    fr = tuple(float(round(t, 12)) for t in fractions)
    if not fr or any(b <= a for a, b in zip(fr, fr[1:])) or fr[0] <= 0 or fr[-1] > 1 + 1e-12:
        raise ValueError(f"information fractions must increase within (0, 1]; got {list(fractions)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    spend(0.5, alpha, kind)  # validates kind
    return np.array(_boundaries(fr, float(alpha), kind))


def crossing_probabilities(fractions: Sequence[float], bounds: Sequence[float], drift: float = 0.0) -> np.ndarray:
    """P(first crossing at look k) for a Brownian motion with `drift` per unit information.

    drift = 0 gives the alpha spent per look; drift = theta gives power and the stopping
    distribution, e.g. for expected sample sizes.
    """
    out = []
    t_prev = 0.0
    z = h = None
    for k, (t, c) in enumerate(zip(fractions, bounds)):
        if k == 0:
            m = drift * math.sqrt(t)
            out.append(float(stats.norm.sf(c - m) + stats.norm.cdf(-c - m)))
            z, w = _simpson(-min(c, 12.0), min(c, 12.0))
            h = w * stats.norm.pdf(z - m)
        else:
            out.append(_exit_probability(c, z, h, t_prev, t, drift))
            z, h = _continue_density(z, h, t_prev, t, c, drift)
        t_prev = t
    return np.array(out)


# --------------------------------------------------------------------------------------------
# a design


@dataclass(frozen=True)
class SequentialDesign:
    """Looks after `looks[k]` seeds per arm, Lan-DeMets spending of `alpha` over them.

    `looks` are cumulative seeds per arm; the information fraction of look k is looks[k]/looks[-1].
    Looks are numbered from 1 in decide(), as in the literature.
    """

    looks: tuple[int, ...]
    alpha: float = 0.05
    spending: str = "obf"

    def __post_init__(self) -> None:
        if not self.looks or any(b <= a for a, b in zip(self.looks, self.looks[1:])) or self.looks[0] < 2:
            raise ValueError(f"looks must be increasing seed counts >= 2; got {list(self.looks)}")

    @classmethod
    def every(cls, step: int, max_seeds: int, first: int | None = None, alpha: float = 0.05, spending: str = "obf") -> SequentialDesign:
        """Looks at first, first+step, ... and always at max_seeds."""
        first = step if first is None else first
        looks = list(range(first, max_seeds, step)) + [max_seeds]
        return cls(tuple(sorted(set(looks))), alpha, spending)

    @property
    def fractions(self) -> np.ndarray:
        return np.asarray(self.looks, dtype=float) / self.looks[-1]

    @property
    def boundaries(self) -> np.ndarray:
        return boundaries(self.fractions, self.alpha, self.spending)

    @property
    def nominal_p(self) -> np.ndarray:
        """The two-sided p-value that each look's boundary corresponds to."""
        return 2 * stats.norm.sf(self.boundaries)

    @property
    def alpha_spent(self) -> np.ndarray:
        return np.asarray(spend(self.fractions, self.alpha, self.spending))

    def decide(self, look: int, z: float) -> str:
        """'reject' when |z| crosses look `look`'s boundary (1-based), else 'continue' or, at the last look, 'accept'."""
        if not 1 <= look <= len(self.looks):
            raise ValueError(f"look must be 1..{len(self.looks)}; got {look}")
        if abs(z) >= self.boundaries[look - 1]:
            return "reject"
        return "accept" if look == len(self.looks) else "continue"

    def describe(self) -> str:
        name = {"obf": "O'Brien-Fleming-type", "pocock": "Pocock-type"}[self.spending]
        return (
            f"Lan-DeMets {name} alpha spending, two-sided alpha={self.alpha:g}, {len(self.looks)} looks at "
            f"{', '.join(map(str, self.looks))} seeds per arm"
        )

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "look": range(1, len(self.looks) + 1),
                "seeds_per_arm": self.looks,
                "fraction": self.fractions,
                "boundary_z": self.boundaries,
                "nominal_p": self.nominal_p,
                "alpha_spent": self.alpha_spent,
            }
        )


# --------------------------------------------------------------------------------------------
# pairwise group-sequential Holm


def welch_z(a: np.ndarray, b: np.ndarray) -> float:
    """Welch's t for a - b as a z-score with the same two-sided p-value; 0 when undefined.

    Written out with scipy.special (the t and normal distribution functions) instead of
    scipy.stats.ttest_ind: the same numbers, at a small fraction of the cost, which matters in
    simulations of thousands of studies; tests/test_study_sequential.py checks it against ttest_ind.
    """
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return 0.0
    va, vb = np.var(a, ddof=1) / na, np.var(b, ddof=1) / nb
    se2 = va + vb
    if not se2 > 0:
        return 0.0
    t = (np.mean(a) - np.mean(b)) / math.sqrt(se2)
    df = se2**2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half_p = special.stdtr(df, -abs(t))  # one tail: p / 2
    if not np.isfinite(half_p):
        return 0.0
    z = Z_CAP if half_p <= 0 else min(float(-special.ndtri(half_p)), Z_CAP)
    return math.copysign(z, t)


def pair_fraction(n_a: int, n_b: int, max_seeds: int) -> float:
    """Information fraction of a two-sample comparison: harmonic n over the planned n."""
    if n_a == 0 or n_b == 0:
        return 0.0
    return min(1.0, 2 * n_a * n_b / (n_a + n_b) / max_seeds)


def _clean_fractions(fractions: Sequence[float], final: bool) -> tuple[float, ...]:
    """Strictly increasing fractions in (0, 1]; looks that added no information are merged away."""
    out: list[float] = []
    for t in fractions:
        if t > 0 and (not out or t > out[-1] + 1e-9):
            out.append(min(t, 1.0))
    if final and out:
        out[-1] = 1.0
        while len(out) > 1 and out[-2] >= 1.0 - 1e-9:
            out.pop(-2)
    return tuple(out)


def _history(zs: Sequence[float], fractions: Sequence[float], final: bool) -> tuple[list[float], tuple[float, ...]]:
    """z per distinct look (the latest z when a look added no information)."""
    keep_z: list[float] = []
    kept: list[float] = []
    for z, t in zip(zs, fractions):
        if t <= 0:
            continue
        if kept and t <= kept[-1] + 1e-9:
            keep_z[-1] = z
            continue
        kept.append(t)
        keep_z.append(z)
    fr = _clean_fractions(kept, final)
    if len(fr) < len(keep_z):  # the last two merged at t=1
        keep_z = keep_z[: len(fr) - 1] + [keep_z[-1]]
    return keep_z, fr


def crossed(zs: Sequence[float], fractions: Sequence[float], alpha: float, kind: str, final: bool) -> bool:
    """Whether |z| crossed the level-`alpha` boundary at any look so far."""
    z, fr = _history(zs, fractions, final)
    if not fr:
        return False
    c = boundaries(fr, alpha, kind)
    return bool(np.any(np.abs(z) >= c))


def repeated_p(zs: Sequence[float], fractions: Sequence[float], kind: str, final: bool) -> float:
    """Smallest alpha at which the boundaries would have been crossed at some look so far."""
    z, fr = _history(zs, fractions, final)
    if not fr:
        return 1.0

    def margin(log_alpha: float) -> float:
        """max_j |z_j| - c_j(alpha): increasing in alpha, zero where the boundaries are first touched."""
        return float(np.max(np.abs(z) - boundaries(fr, math.exp(log_alpha), kind)))

    lo, hi = math.log(1e-12), math.log(0.999)
    if margin(hi) < 0:
        return 1.0
    if margin(lo) >= 0:
        return 1e-12
    return math.exp(optimize.brentq(margin, lo, hi, xtol=1e-9))


def holm_sequential(histories: dict[Any, tuple[list[float], list[float]]], alpha: float, kind: str, final: bool, rejected: set | None = None) -> set:
    """Pairs rejected by the group-sequential Holm procedure given each pair's (z, fraction) history."""
    rejected = set(rejected or ())
    m = len(histories)
    changed = True
    while changed:
        changed = False
        level = alpha / max(m - len(rejected), 1)
        for key, (zs, fr) in histories.items():
            if key not in rejected and crossed(zs, fr, level, kind, final):
                rejected.add(key)
                changed = True
    return rejected


# --------------------------------------------------------------------------------------------
# the driver-agnostic loop


@dataclass
class SequentialResult:
    """What a sequential study did: design, looks, decisions, adjusted p-values and seeds saved."""

    design: SequentialDesign
    arms: list[Any]
    metric: str
    by: str
    looks_done: int
    seeds_used: int
    stopped_because: str
    pairs: pd.DataFrame
    history: pd.DataFrame
    runs: pd.DataFrame = field(repr=False)
    margin: float | None = None

    @property
    def max_seeds(self) -> int:
        return self.design.looks[-1]

    @property
    def seeds_saved(self) -> int:
        """Runs not trained compared with running every arm to max_seeds."""
        return (self.max_seeds - self.seeds_used) * len(self.arms)

    def render(self) -> str:
        """A plain-text summary for the terminal."""
        equivalence = f"; a pair is also decided when its repeated CI lies within +-{self.margin:g}" if self.margin is not None else ""
        lines = [
            f"sequential study of {self.metric} by {self.by}: {', '.join(map(str, self.arms))}",
            f"design: {self.design.describe()}{equivalence}",
            "boundaries |z| (nominal two-sided p) at alpha, before Holm: "
            + ", ".join(f"n={n}: {c:.3f} ({p:.2g})" for n, c, p in zip(self.design.looks, self.design.boundaries, self.design.nominal_p)),
            f"stopped after look {self.looks_done} at {self.seeds_used} seeds per arm: {self.stopped_because}; "
            f"saved {self.seeds_saved} runs of {self.max_seeds * len(self.arms)} ({self.seeds_saved / (self.max_seeds * len(self.arms)):.0%})",
            "pairs (Welch z per look; p_adj = Holm-adjusted repeated p-values, family-wise over all pairs):",
        ]
        for _, row in self.pairs.iterrows():
            lines.append(
                f"  {row['arm_a']} vs {row['arm_b']}: diff {row['diff']:+.4g} (n {row['n_a']}/{row['n_b']}), z {row['z']:+.2f}, "
                f"repeated p {row['repeated_p']:.3g}, p_adj {row['p_adj']:.3g} -> {row['decision']}"
                + (
                    f" (at look {int(row['look_decided'])}, {self.design.looks[int(row['look_decided']) - 1]} seeds)"
                    if pd.notna(row["look_decided"])
                    else ""
                )
            )
        return "\n".join(lines) + "\n"


def run_until_decided(
    run_round: Callable[[list[int]], pd.DataFrame],
    arms: Sequence[Any],
    metric: str,
    alpha: float = 0.05,
    max_seeds: int = 20,
    step: int = 5,
    *,
    by: str = "method",
    seed_col: str = "seed",
    first: int | None = None,
    start_seed: int = 0,
    spending: str = "obf",
    status_col: str = "status",
    adjusted: bool = True,
    margin: float | None = None,
) -> SequentialResult:
    """Run seeds in rounds, testing every pair of arms after each, until all pairs are decided.

    run_round(seeds) runs (or fetches) every arm on those seeds and returns their runs, one row per
    run with columns `by`, `seed_col`, `metric` (and `status_col`); rows of seeds already seen are
    replaced. Rounds are `first` seeds (default `step`, at least 2), then `step` more, up to
    `max_seeds` per arm. The study stops when every pair's difference is significant under the
    group-sequential Holm procedure, or at max_seeds. `adjusted=False` skips the adjusted p-values
    (a simulation that only needs the decisions).

    With `margin` (metric units) a pair is also decided when its repeated confidence interval
    (Jennison & Turnbull 2000, ch. 9: the difference +- the look's boundary at level alpha/pairs,
    on the Welch t scale) lies inside (-margin, margin): "equivalent within +-margin". Such
    intervals hold jointly over all looks, so the claim keeps its error rate whenever it is made;
    stopping for it never adds false rejections (the efficacy boundaries ignore it: non-binding).
    """
    arms = list(arms)
    if len(arms) < 2:
        raise ValueError("a sequential comparison needs at least two arms")
    design = SequentialDesign.every(step, max_seeds, first=first if first is not None else max(step, 2), alpha=alpha, spending=spending)
    pairs = list(itertools.combinations(arms, 2))
    runs = pd.DataFrame()
    z_hist: dict[tuple, list[float]] = {p: [] for p in pairs}
    t_hist: dict[tuple, list[float]] = {p: [] for p in pairs}
    rejected: set = set()
    equivalent: set = set()
    rci: dict[tuple, tuple[float, float]] = {}
    decided_at: dict[tuple, int] = {}
    history = []
    done = 0
    stopped = "max seeds reached"
    for look, n in enumerate(design.looks, start=1):
        seeds = list(range(start_seed + done, start_seed + n))
        new = run_round(seeds)
        runs = pd.concat([runs, new], ignore_index=True) if len(runs) else new.reset_index(drop=True)
        runs = runs.drop_duplicates(subset=[by, seed_col], keep="last")
        done = n
        final = look == len(design.looks)
        values = _arm_values(runs, by, arms, metric, status_col)
        for a, b in pairs:
            z_hist[(a, b)].append(welch_z(values[a], values[b]))
            t_hist[(a, b)].append(pair_fraction(len(values[a]), len(values[b]), max_seeds))
        rejected = holm_sequential({p: (z_hist[p], t_hist[p]) for p in pairs}, alpha, spending, final, rejected)
        for p in rejected:
            decided_at.setdefault(p, look)
        if margin is not None:
            for a, b in pairs:
                if (a, b) in rejected or (a, b) in equivalent:
                    continue
                rci[(a, b)] = repeated_ci(values[a], values[b], t_hist[(a, b)], alpha / len(pairs), spending, final)
                if -margin < rci[(a, b)][0] and rci[(a, b)][1] < margin:
                    equivalent.add((a, b))
                    decided_at.setdefault((a, b), look)
        history += [
            {
                "look": look,
                "seeds_per_arm": n,
                "arm_a": a,
                "arm_b": b,
                "n_a": len(values[a]),
                "n_b": len(values[b]),
                "z": z_hist[(a, b)][-1],
                "fraction": t_hist[(a, b)][-1],
                "rejected": (a, b) in rejected,
                "equivalent": (a, b) in equivalent,
            }
            for a, b in pairs
        ]
        if len(rejected | equivalent) == len(pairs):
            stopped = "every pair decided"
            break
    final = stopped == "max seeds reached"
    rows = []
    for a, b in pairs:
        va, vb = values[a], values[b]
        rep = repeated_p(z_hist[(a, b)], t_hist[(a, b)], spending, final) if adjusted else math.nan
        diff = float(np.mean(va) - np.mean(vb)) if len(va) and len(vb) else math.nan
        if (a, b) in rejected:
            decision = f"{a} > {b}" if diff > 0 else f"{a} < {b}"
        elif (a, b) in equivalent:
            decision = f"equivalent within +-{margin:g}"
        else:
            decision = "no difference shown" if final else "undecided"
        rows.append(
            {
                "arm_a": a,
                "arm_b": b,
                "n_a": len(va),
                "n_b": len(vb),
                "mean_a": float(np.mean(va)) if len(va) else math.nan,
                "mean_b": float(np.mean(vb)) if len(vb) else math.nan,
                "diff": diff,
                "z": z_hist[(a, b)][-1],
                "repeated_p": rep,
                "rejected": (a, b) in rejected,
                "equivalent": (a, b) in equivalent,
                "rci_low": rci.get((a, b), (math.nan,))[0],
                "rci_high": rci.get((a, b), (math.nan, math.nan))[1],
                "look_decided": decided_at.get((a, b)),
                "decision": decision,
            }
        )
    table = pd.DataFrame(rows)
    if adjusted:
        table["p_adj"] = multipletests(table["repeated_p"].to_numpy(dtype=float), method="holm")[1]
    else:
        table["p_adj"] = math.nan
    table["correction"] = "holm (group-sequential)"
    return SequentialResult(design, arms, metric, by, look, done, stopped, table, pd.DataFrame(history), runs, margin)


def repeated_ci(a: np.ndarray, b: np.ndarray, fractions: Sequence[float], alpha: float, kind: str, final: bool) -> tuple[float, float]:
    """Repeated confidence interval of mean(a) - mean(b) at the latest look (Jennison & Turnbull 2000, ch. 9).

    The half-width is the look's level-`alpha` boundary turned into a Welch t quantile with the
    same tail probability, times the Welch standard error; (-inf, inf) while the boundary is infinite
    or a difference is undefined.
    """
    if len(a) < 2 or len(b) < 2:
        return -math.inf, math.inf
    _, fr = _history([0.0] * len(fractions), fractions, final)
    if not fr:
        return -math.inf, math.inf
    c = boundaries(fr, alpha, kind)[-1]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se2 = va + vb
    if not math.isfinite(c) or not se2 > 0:
        return -math.inf, math.inf
    df = se2**2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = -float(special.stdtrit(df, special.ndtr(-c))) * math.sqrt(se2)  # the t quantile with the boundary's tail
    diff = float(np.mean(a) - np.mean(b))
    return diff - half, diff + half


def _arm_values(runs: pd.DataFrame, by: str, arms: Sequence[Any], metric: str, status_col: str) -> dict[Any, np.ndarray]:
    """Finite metric values of each arm's finished runs."""
    part = finished(runs, status_col)
    x = pd.to_numeric(part[metric], errors="coerce").to_numpy(dtype=float)
    labels = part[by].to_numpy(dtype=object)
    ok = np.isfinite(x)
    return {arm: x[ok & (labels == arm)] for arm in arms}
