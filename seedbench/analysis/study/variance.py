"""Variance decomposition of a crossed seed design: how much of the across-seed spread is init, data order, augmentation.

"Method X is more stable" usually means one number, the std over seeds. A crossed design (every
init seed run with every data-order seed, optionally every augmentation seed) splits that number
into variance components (Bouthillier et al., 2021): sigma^2_init, sigma^2_data, sigma^2_augment,
their interactions and a residual (non-determinism, and the interaction that a design with one run
per cell cannot separate). A method that changes the initialisation should move sigma^2_init and
nothing else; this module says by how much, with intervals.

Method
------
* Random-effects ANOVA on a balanced, fully crossed design: mean squares from statsmodels'
  ``anova_lm`` on an OLS fit with crossed categorical factors, then components from the expected
  mean squares (EMS). For a balanced crossed random model E[MS_T] = sigma^2_e + sum over terms U
  containing T of r * prod(levels not in U) * sigma^2_U; the components are the Moebius inversion
  of that triangular system, i.e. signed sums of mean squares (``init = (MS_init - MS_resid)/b``
  in the two-factor, one-run-per-cell case). ANOVA estimates are unbiased and can be negative;
  they are reported as they are and truncated at 0 only where a std or a share is shown.
* Intervals: the modified large-sample (MLS) method of Ting, Burdick, Graybill et al. (1990),
  the Graybill-Wang interval extended to differences of mean squares (Burdick & Graybill 1992,
  ch. 3). For one mean square (the residual) it is the exact chi-square interval; for differences
  it is near nominal even with 5-10 levels per factor, where Satterthwaite's interval for a
  difference is known to undercover. Coverage is checked by simulation (tests/test_study_variance.py,
  bench/bench_study_variance.py; figures in docs/statistics.md).
* Comparing arms ("arm B changes the init component by x"): generalized confidence intervals
  (Weerahandi 1993): every mean square of both arms is replaced by draws of its generalized
  pivotal quantity ms * df / chi2(df), each component is recomputed from the draws, and the
  percentiles of the difference of variances and of the ratio of standard deviations are the
  intervals. A two-way "pigeonhole" bootstrap over seed levels was tried first and dropped: with
  5-20 levels per factor its percentile intervals for a difference of components covered 87-89%
  instead of 95%, and those for the std ratio 49% at 5 x 5.

Only balanced designs are decomposed: a missing or failed cell is a one-line ConfigError naming
it, because EMS formulas for unbalanced data are approximations the intervals do not cover.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from seedbench.analysis.stats.intervals import CONFIDENCE, SEED
from seedbench.analysis.stats.runs import FINISHED, NAN
from seedbench.errors import ConfigError

N_DRAWS = 20_000
RESIDUAL = "residual"
# the factor -> column of the override seed; a run without an override takes its stream from `seed`
FACTOR_COLUMNS: dict[str, str] = {"init": "init_seed", "data": "data_seed", "augment": "augment_seed"}
SEED_COLUMN = "seed"

COMPONENT_COLUMNS = [
    "component", "variance", "ci_low", "ci_high", "std", "std_ci_low", "std_ci_high", "share",
    "mean_square", "df", "n_runs", "design", "ci_method",
]  # fmt: skip
COMPARISON_COLUMNS = [
    "baseline", "component", "var", "var_baseline", "var_diff", "var_diff_ci_low", "var_diff_ci_high",
    "std", "std_baseline", "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", "n_draws", "ci_method",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# the design


@dataclass
class Design:
    """A balanced crossed design as an array: cube[i_1, ..., i_k, replicate] = metric value."""

    factors: tuple[str, ...]
    levels: dict[str, list[Any]]
    cube: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def replicates(self) -> int:
        return int(self.cube.shape[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.cube.shape[:-1])

    def describe(self) -> str:
        """'10 init x 8 data, 1 run per cell'."""
        sizes = " x ".join(f"{len(self.levels[f])} {f}" for f in self.factors)
        r = self.replicates
        return f"{sizes}, {r} run{'s' if r > 1 else ''} per cell"


def level_column(df: pd.DataFrame, factor: str, columns: Mapping[str, str] = FACTOR_COLUMNS) -> pd.Series:
    """The seed a run's `factor` stream came from: its override column, else the run seed.

    seedbench.seeding derives each stream from ``override if given else seed``, so two runs share
    their init weights exactly when this value is equal (for the same model and init scheme).
    """
    column = columns[factor]
    base = df[SEED_COLUMN] if SEED_COLUMN in df.columns else pd.Series(pd.NA, index=df.index)
    if column not in df.columns:
        return base.astype(object)
    return df[column].astype(object).where(df[column].notna(), base.astype(object))


def numeric_metric(df: pd.DataFrame, metric: str) -> pd.Series:
    """The metric column as floats, or a one-line ConfigError when it is not a number column."""
    if metric not in df.columns:
        raise ConfigError(f"unknown metric column {metric!r}; pass --metric with a numeric column such as val_acc or test_acc")
    column = df[metric]
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        converted = pd.to_numeric(column, errors="coerce")
        if column.notna().any() and converted.notna().sum() < column.notna().sum():
            raise ConfigError(
                f"metric column {metric!r} is not numeric (e.g. {column.dropna().iloc[0]!r}); pick a numeric column such as val_acc or test_acc"
            )
        column = converted
    return column.astype(float)


def _aliased(a: pd.Series, b: pd.Series) -> bool:
    """Whether two factors partition the runs identically (one level of a <-> one level of b)."""
    pairs = pd.DataFrame({"a": a.astype(str).to_numpy(), "b": b.astype(str).to_numpy()}).drop_duplicates()
    return pairs["a"].is_unique and pairs["b"].is_unique


def crossed_design(
    runs: pd.DataFrame,
    metric: str,
    factors: Sequence[str] | None = None,
    *,
    columns: Mapping[str, str] = FACTOR_COLUMNS,
    status_col: str = "status",
    label: str = "",
) -> Design:
    """The balanced crossed array of one arm's runs, or a one-line ConfigError saying what is wrong.

    Factors are those of `factors` (default: init, data, augment) that take more than one value.
    A factor whose every run has its own level (augment following a per-cell `seed`) cannot be told
    apart from the residual and joins it, with a note; two factors that vary together (init_seed
    and data_seed both following `seed`) are not crossed, which is an error. Every combination of
    levels must hold the same number of finished runs.
    """
    where = f" ({label})" if label else ""
    values = numeric_metric(runs, metric)
    if status_col in runs.columns:
        bad = runs[status_col].astype(object) != FINISHED
        if bad.any():
            counts = runs.loc[bad, status_col].astype(str).value_counts()
            what = ", ".join(f"{n} {s}" for s, n in counts.items())
            raise ConfigError(
                f"{what} run(s){where}: a decomposition needs every cell finished; rerun them "
                f"(seedbench sweep --retry-failed) or leave their seeds out with --where"
            )
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        raise ConfigError(
            f"{int((~np.isfinite(values.to_numpy(dtype=float))).sum())} run(s){where} have no finite {metric}; "
            f"leave them out with --where or pick another --metric"
        )
    wanted = list(factors) if factors is not None else list(columns)
    unknown = [f for f in wanted if f not in columns]
    if unknown:
        raise ConfigError(f"unknown factor(s) {unknown}; choose from {', '.join(columns)}")
    notes: list[str] = []
    levels = {f: level_column(runs, f, columns) for f in wanted}
    used = []
    for f in wanted:
        n_levels = levels[f].nunique(dropna=False)
        if n_levels < 2:
            continue
        if f == "augment" and "augment" in runs.columns and not runs["augment"].fillna(False).astype(bool).any():
            notes.append("augmentation is off: the augment seed has no effect and is left out")
            continue
        if n_levels == len(runs) and f == "augment":
            notes.append("the augment seed differs in every run: its variance is part of the residual")
            continue
        used.append(f)
    if "augment" in used:
        partner = next((f for f in used if f != "augment" and _aliased(levels["augment"], levels[f])), None)
        if partner is not None:
            used.remove("augment")
            notes.append(f"the augment seed varies together with the {partner} seed: the {partner} component includes augmentation")
    for a, b in itertools.combinations(list(used), 2):
        if _aliased(levels[a], levels[b]):
            raise ConfigError(
                f"{a} and {b} seeds vary together{where}: each {a} seed goes with one {b} seed, so the design is "
                f"not crossed; run every {columns[a]} with every {columns[b]}"
            )
    if not used:
        raise ConfigError(f"no seed factor varies{where}: a decomposition needs init_seed and/or data_seed to take several values")
    if len(used) == 1 and levels[used[0]].nunique() == len(runs):
        f = used[0]
        raise ConfigError(
            f"only {f} varies{where}, one run per seed: nothing separates it from run-to-run noise; "
            f"cross it with another factor (e.g. every {columns[f]} with several data_seed values)"
        )
    level_values = {f: sorted(pd.unique(levels[f]), key=_sort_key) for f in used}
    keys = pd.DataFrame({f: levels[f].to_numpy() for f in used})
    counts = keys.groupby(used, dropna=False).size()
    n_cells = math.prod(len(v) for v in level_values.values())
    if len(counts) < n_cells:
        present = set(counts.index if len(used) > 1 else [(k,) for k in counts.index])
        missing = next(c for c in itertools.product(*level_values.values()) if tuple(c) not in present)
        example = ", ".join(f"{columns[f]}={v}" for f, v in zip(used, missing))
        raise ConfigError(
            f"the design is not crossed{where}: {n_cells - len(counts)} of {n_cells} seed combinations have no run "
            f"(e.g. {example}); run the missing cells or drop those seeds with --where"
        )
    if counts.nunique() > 1:
        raise ConfigError(
            f"the design is unbalanced{where}: cells hold between {counts.min()} and {counts.max()} runs; "
            f"make every cell hold the same number of runs (or drop the extra ones with --where)"
        )
    r = int(counts.iloc[0])
    index = [keys[f].map({v: i for i, v in enumerate(level_values[f])}).to_numpy() for f in used]
    order = np.lexsort(tuple(reversed(index)))
    cube = values.to_numpy(dtype=float)[order].reshape(*(len(level_values[f]) for f in used), r)
    return Design(tuple(used), level_values, cube, notes)


def _sort_key(v: Any) -> tuple[int, Any]:
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


# --------------------------------------------------------------------------------------------
# mean squares and expected mean squares


Term = tuple[int, ...]


def model_terms(k: int, r: int) -> list[Term]:
    """Fitted terms: every main effect and interaction; with one run per cell the top one is the residual."""
    terms = [t for size in range(1, k + 1) for t in itertools.combinations(range(k), size)]
    return terms[:-1] if r == 1 else terms


def mean_squares_statsmodels(design: Design) -> dict[Term | str, tuple[float, int]]:
    """(mean square, df) per term and for the residual, from statsmodels' anova_lm on an OLS fit.

    The design is balanced and orthogonal, so type I, II and III sums of squares coincide.
    """
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    k, r = len(design.factors), design.replicates
    names = [f"f{i}" for i in range(k)]
    grid = np.indices(design.cube.shape).reshape(k + 1, -1)
    frame = pd.DataFrame({n: grid[i] for i, n in enumerate(names)})
    frame["y"] = design.cube.reshape(-1)
    terms = model_terms(k, r)
    formula = "y ~ " + " + ".join(":".join(f"C({names[i]})" for i in t) for t in terms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels warns about near-singular fits of exact data
        table = anova_lm(ols(formula, data=frame).fit(), typ=1)
    out: dict[Term | str, tuple[float, int]] = {}
    for t in terms:
        row = table.loc[":".join(f"C({names[i]})" for i in t)]
        out[t] = (float(row["mean_sq"]), int(round(row["df"])))
    out[RESIDUAL] = (float(table.loc["Residual", "mean_sq"]), int(round(table.loc["Residual", "df"])))
    return out


def mean_squares(cube: np.ndarray, k: int | None = None) -> tuple[dict[Term | str, np.ndarray], dict[Term | str, int]]:
    """Mean squares of a balanced crossed array, vectorized over leading batch axes.

    ``cube`` has shape (*batch, L_1, ..., L_k, r); `k` defaults to ``cube.ndim - 1`` (no batch). The bootstrap needs thousands of refits, which
    statsmodels' formula OLS does not do quickly; this is the same orthogonal decomposition (the
    projection of the cell means on each term) and the tests check it against
    mean_squares_statsmodels(). The effect of term T is the cell means averaged over the factors
    not in T and double-centred over those in T.
    """
    return _mean_squares(cube, cube.ndim - 1 if k is None else k)


def _mean_squares(cube: np.ndarray, k: int) -> tuple[dict[Term | str, np.ndarray], dict[Term | str, int]]:
    shape = cube.shape[-(k + 1) :]
    sizes, r = shape[:-1], shape[-1]
    nb = cube.ndim - (k + 1)
    cell = cube.mean(axis=-1)
    ms: dict[Term | str, np.ndarray] = {}
    df: dict[Term | str, int] = {}
    for t in model_terms(k, r):
        x = cell
        for axis in range(k):
            if axis not in t:
                x = x.mean(axis=nb + axis, keepdims=True)
        for axis in t:
            x = x - x.mean(axis=nb + axis, keepdims=True)
        ss = r * (x**2).sum(axis=tuple(range(nb, nb + k))) * math.prod(sizes[a] for a in range(k) if a not in t)
        df[t] = math.prod(sizes[a] - 1 for a in t)
        ms[t] = ss / df[t]
    if r == 1:
        full = tuple(range(k))
        x = cell
        for axis in full:
            x = x - x.mean(axis=nb + axis, keepdims=True)
        df[RESIDUAL] = math.prod(s - 1 for s in sizes)
        ms[RESIDUAL] = (x**2).sum(axis=tuple(range(nb, nb + k))) / df[RESIDUAL]
    else:
        df[RESIDUAL] = math.prod(sizes) * (r - 1)
        ms[RESIDUAL] = ((cube - cell[..., None]) ** 2).sum(axis=tuple(range(nb, nb + k + 1))) / df[RESIDUAL]
    return ms, df


def ems_coefficients(sizes: Sequence[int], r: int) -> dict[Term | str, dict[Term | str, float]]:
    """Each variance component as a signed combination of mean squares (balanced random model).

    c_T sigma^2_T = sum over fitted terms U containing T of (-1)^|U - T| MS_U, where the top
    interaction's MS is the residual's when there is one run per cell, and the top interaction
    with replicates is MS_top - MS_resid; c_T = r * prod of the levels of the factors not in T.
    """
    k = len(sizes)
    terms = model_terms(k, r)
    full = tuple(range(k))
    out: dict[Term | str, dict[Term | str, float]] = {}
    for t in terms:
        c = r * math.prod(sizes[a] for a in range(k) if a not in t)
        coef: dict[Term | str, float] = {}
        for u in [*terms, full] if r == 1 else terms:
            if set(t) <= set(u):
                key: Term | str = RESIDUAL if (r == 1 and u == full) else u
                coef[key] = coef.get(key, 0.0) + (-1) ** (len(u) - len(t)) / c
        if r > 1 and t == full:
            coef[RESIDUAL] = -1.0 / c
        out[t] = coef
    out[RESIDUAL] = {RESIDUAL: 1.0}
    return out


def component_name(term: Term | str, factors: Sequence[str], r: int) -> str:
    if term == RESIDUAL:
        if r == 1 and len(factors) > 1:
            return f"residual (incl. {':'.join(factors)})"
        return RESIDUAL
    return ":".join(factors[i] for i in term)


# --------------------------------------------------------------------------------------------
# intervals


def _f_upper(alpha: float, d1: float, d2: float) -> float:
    """F value with `alpha` to its right; d2 = inf is chi2/d1."""
    if math.isinf(d2):
        return float(stats.chi2.isf(alpha, d1) / d1)
    return float(stats.f.isf(alpha, d1, d2))


def mls_interval(coefs: Sequence[float], ms: Sequence[float | np.ndarray], dfs: Sequence[int], confidence: float = CONFIDENCE) -> tuple[Any, Any]:
    """Modified large-sample interval for gamma = sum_i coefs_i * E[MS_i] (Ting et al. 1990).

    Positive and negative coefficients are handled separately, as in Burdick & Graybill (1992,
    ch. 3): each bound is gamma_hat -/+ sqrt(V) with V built from the chi-square and F quantiles of
    the mean squares' degrees of freedom, so a single mean square gets the exact chi-square
    interval. `ms` may hold arrays (one entry per simulated data set); bounds are not truncated.
    """
    alpha = (1 - confidence) / 2
    ms = [np.asarray(m, dtype=float) for m in ms]
    gamma = sum(c * m for c, m in zip(coefs, ms))
    pos = [(c, m, n) for c, m, n in zip(coefs, ms, dfs) if c > 0]
    neg = [(-c, m, n) for c, m, n in zip(coefs, ms, dfs) if c < 0]

    def G(n: float) -> float:
        return 1 - 1 / _f_upper(alpha, n, math.inf)

    def H(n: float) -> float:
        return 1 / _f_upper(1 - alpha, n, math.inf) - 1

    v_low = sum((G(n) * c * m) ** 2 for c, m, n in pos) + sum((H(n) * c * m) ** 2 for c, m, n in neg)
    v_high = sum((H(n) * c * m) ** 2 for c, m, n in pos) + sum((G(n) * c * m) ** 2 for c, m, n in neg)
    for cq, mq, nq in pos:
        for cr, mr, nr in neg:
            f_hi = _f_upper(alpha, nq, nr)
            f_lo = _f_upper(1 - alpha, nq, nr)
            g_qr = ((f_hi - 1) ** 2 - G(nq) ** 2 * f_hi**2 - H(nr) ** 2) / f_hi
            h_qr = ((1 - f_lo) ** 2 - H(nq) ** 2 * f_lo**2 - G(nr) ** 2) / f_lo
            v_low = v_low + g_qr * cq * cr * mq * mr
            v_high = v_high + h_qr * cq * cr * mq * mr
    v_low = v_low + _same_sign_cross(pos, alpha, G)
    v_high = v_high + _same_sign_cross(neg, alpha, G)
    low = gamma - np.sqrt(np.maximum(v_low, 0.0))
    high = gamma + np.sqrt(np.maximum(v_high, 0.0))
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def _same_sign_cross(terms: list[tuple[float, np.ndarray, int]], alpha: float, G) -> Any:
    """The G*_qt terms for pairs of mean squares with the same sign (zero for a single one)."""
    total: Any = 0.0
    if len(terms) < 2:
        return total
    for (cq, mq, nq), (ct, mt, nt) in itertools.combinations(terms, 2):
        g_star = ((1 - 1 / _f_upper(alpha, nq + nt, math.inf)) ** 2 * (nq + nt) ** 2 / (nq * nt)
                  - G(nq) ** 2 * nq / nt - G(nt) ** 2 * nt / nq) / (len(terms) - 1)  # fmt: skip
        total = total + g_star * cq * ct * mq * mt
    return total


# --------------------------------------------------------------------------------------------
# one arm


def decompose_design(design: Design, *, confidence: float = CONFIDENCE, use_statsmodels: bool = True) -> pd.DataFrame:
    """Variance components of one crossed design with MLS intervals, one row per component + total."""
    r = design.replicates
    if use_statsmodels:
        msdf = mean_squares_statsmodels(design)
        ms = {key: v[0] for key, v in msdf.items()}
        df = {key: v[1] for key, v in msdf.items()}
    else:
        ms_arr, df = mean_squares(design.cube)
        ms = {key: float(v) for key, v in ms_arr.items()}
    coefs = ems_coefficients(design.shape, r)
    rows = []
    total: dict[Term | str, float] = {}
    for term, combo in coefs.items():
        keys = list(combo)
        estimate = float(sum(combo[key] * ms[key] for key in keys))
        low, high = mls_interval([combo[key] for key in keys], [ms[key] for key in keys], [df[key] for key in keys], confidence)
        for key in keys:
            total[key] = total.get(key, 0.0) + combo[key]
        own = term if term == RESIDUAL else term
        rows.append(_component_row(component_name(term, design.factors, r), estimate, low, high, ms[own], df[own]))
    keys = [key for key in total if abs(total[key]) > 1e-15]
    est_total = float(sum(total[key] * ms[key] for key in keys))
    low, high = mls_interval([total[key] for key in keys], [ms[key] for key in keys], [df[key] for key in keys], confidence)
    rows.append(_component_row("total", est_total, low, high, NAN, int(sum(df.values()))))
    out = pd.DataFrame(rows)
    positive = out["variance"].iloc[:-1].clip(lower=0)
    out["share"] = list(positive / positive.sum() if positive.sum() > 0 else positive * NAN) + [1.0]
    out["n_runs"] = int(design.cube.size)
    out["design"] = design.describe()
    out["ci_method"] = f"MLS (Ting et al. 1990), {confidence:.0%}; ANOVA/EMS estimates"
    return out[COMPONENT_COLUMNS]


def _component_row(name: str, estimate: float, low: float, high: float, ms: float, df: int) -> dict[str, Any]:
    low_t, high_t = max(low, 0.0), max(high, 0.0)
    return {
        "component": name,
        "variance": estimate,
        "ci_low": low_t,
        "ci_high": high_t,
        "std": math.sqrt(max(estimate, 0.0)),
        "std_ci_low": math.sqrt(low_t),
        "std_ci_high": math.sqrt(high_t),
        "mean_square": ms,
        "df": df,
    }


def component_estimates(cube: np.ndarray, k: int) -> dict[Term | str, np.ndarray]:
    """Variance components (ANOVA/EMS) of a batch of cubes with k factor axes (for the bootstrap)."""
    ms, _ = _mean_squares(cube, k)
    sizes, r = cube.shape[-(k + 1) : -1], cube.shape[-1]
    out = {}
    for term, combo in ems_coefficients(sizes, r).items():
        out[term] = sum(c * ms[key] for key, c in combo.items())
    return out


# --------------------------------------------------------------------------------------------
# comparing arms


def generalized_pivot(
    coefs: Sequence[float], ms: Sequence[float], dfs: Sequence[int], rng: np.random.Generator, n_draws: int = N_DRAWS
) -> np.ndarray:
    """Draws of the generalized pivotal quantity of sum_i coefs_i * E[MS_i] (Weerahandi 1993).

    Each observed mean square ms_i with df_i becomes ms_i * df_i / U_i, U_i ~ chi2(df_i): the
    distribution of the parameter given the data, under the model's chi-square laws. Percentiles
    of any function of such draws (a difference, a ratio of square roots) are generalized
    confidence intervals, which for variance components hold their level well with few levels
    (Hamada & Weerahandi 2000; Burdick, Borror & Montgomery 2005).
    """
    out = np.zeros(n_draws)
    for c, m, n in zip(coefs, ms, dfs):
        out += c * m * n / rng.chisquare(n, n_draws)
    return out


def _component_pivots(design: Design, rng: np.random.Generator, n_draws: int) -> dict[Term | str, np.ndarray]:
    ms_arr, df = mean_squares(design.cube)
    ms = {key: float(v) for key, v in ms_arr.items()}
    out = {}
    for term, combo in ems_coefficients(design.shape, design.replicates).items():
        keys = list(combo)
        out[term] = generalized_pivot([combo[q] for q in keys], [ms[q] for q in keys], [df[q] for q in keys], rng, n_draws)
    return out


def compare_designs(
    design: Design,
    baseline: Design,
    *,
    confidence: float = CONFIDENCE,
    n_draws: int = N_DRAWS,
    seed: int = SEED,
) -> pd.DataFrame:
    """How an arm's variance components differ from the baseline arm's, with generalized CIs.

    One row per component: var_diff = arm - baseline, std_ratio = arm / baseline, each with a
    generalized confidence interval from independent pivot draws of the two arms. The arms' mean
    squares are treated as independent. Shared data-order seeds do not break this (data effects
    enter MS_data only, orthogonal to MS_init and the residual); when the arms share init seeds
    *and* their init effects are positively correlated (a method that rescales the same draws),
    the true interval is narrower than the one reported, i.e. this errs on the conservative side.
    """
    if design.factors != baseline.factors or design.replicates != baseline.replicates:
        raise ConfigError(
            f"the arms have different designs ({design.describe()} vs {baseline.describe()}); compare arms run on the same crossed design"
        )
    rng = np.random.default_rng(seed)
    piv_a = _component_pivots(design, rng, n_draws)
    piv_b = _component_pivots(baseline, rng, n_draws)
    point_a = component_estimates(design.cube, len(design.factors))
    point_b = component_estimates(baseline.cube, len(baseline.factors))
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    rows = []
    for term in point_a:
        va, vb = float(point_a[term]), float(point_b[term])
        diff = np.quantile(piv_a[term] - piv_b[term], q)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.sqrt(np.clip(piv_a[term], 0, None)) / np.sqrt(np.clip(piv_b[term], 0, None))
        ratio = np.quantile(np.where(np.isnan(ratio), 1.0, ratio), q, method="inverted_cdf")  # 0/0: no information either way
        sa, sb = math.sqrt(max(va, 0.0)), math.sqrt(max(vb, 0.0))
        rows.append(
            {
                "component": component_name(term, design.factors, design.replicates),
                "var": va,
                "var_baseline": vb,
                "var_diff": va - vb,
                "var_diff_ci_low": float(diff[0]),
                "var_diff_ci_high": float(diff[1]),
                "std": sa,
                "std_baseline": sb,
                "std_ratio": sa / sb if sb > 0 else (NAN if sa == 0 else math.inf),
                "std_ratio_ci_low": float(ratio[0]),
                "std_ratio_ci_high": float(ratio[1]),
                "n_draws": n_draws,
                "ci_method": f"generalized pivotal quantities (Weerahandi 1993), {confidence:.0%}, arms independent",
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# a whole run table


@dataclass
class Decomposition:
    """Components per arm (and group) and each arm's change against the baseline arm."""

    components: pd.DataFrame
    comparisons: pd.DataFrame
    notes: list[str]
    metric: str
    by: str | None
    within: list[str]

    def sentences(self, component: str = "init", digits: int = 3) -> list[str]:
        """'arm B changes the init std by x0.52 [0.31, 0.85] (variance -1.2e-05 [...])' per comparison row."""
        out = []
        if self.comparisons.empty:
            return out
        rows = self.comparisons[self.comparisons["component"] == component]
        for _, row in rows.iterrows():
            where = ", ".join(f"{c}={row[c]}" for c in self.within)
            prefix = f"[{where}] " if where else ""
            out.append(
                f"{prefix}{row[self.by]} vs {row['baseline']}: {component} std x{row['std_ratio']:.{digits}g} "
                f"[{row['std_ratio_ci_low']:.{digits}g}, {row['std_ratio_ci_high']:.{digits}g}] "
                f"({row['std_baseline']:.{digits}g} -> {row['std']:.{digits}g}); variance change {row['var_diff']:+.{digits}g} "
                f"[{row['var_diff_ci_low']:+.{digits}g}, {row['var_diff_ci_high']:+.{digits}g}]"
            )
        return out


def decompose(
    runs: pd.DataFrame,
    metric: str,
    by: str | None = None,
    within: Sequence[str] = (),
    *,
    baseline: Any | None = None,
    factors: Sequence[str] | None = None,
    columns: Mapping[str, str] = FACTOR_COLUMNS,
    status_col: str = "status",
    confidence: float = CONFIDENCE,
    n_draws: int = N_DRAWS,
    seed: int = SEED,
) -> Decomposition:
    """Variance components of every arm (values of `by`) in every `within` group, and arm-vs-baseline changes.

    The baseline is `baseline` or the first arm in sorted order. Any group that is not a balanced
    crossed design raises ConfigError naming the group and the fix.
    """
    within = [within] if isinstance(within, str) else list(within)
    keys = [*within, *([by] if by else [])]
    missing = [c for c in keys if c not in runs.columns]
    if missing:
        raise ConfigError(f"unknown column(s) {missing}; runs has: {', '.join(map(str, runs.columns))}")
    numeric_metric(runs, metric)
    comp_frames, cmp_frames, notes = [], [], []
    groups = [((), runs)] if not within else list(runs.groupby(within, sort=True, dropna=False))
    for wkey, group in groups:
        wkey = wkey if isinstance(wkey, tuple) else (wkey,)
        wdict = dict(zip(within, wkey))
        arms = sorted(pd.unique(group[by].astype(object)), key=str) if by else [None]
        designs: dict[Any, Design] = {}
        for arm in arms:
            part = group if by is None else group[group[by].astype(object) == arm]
            label = ", ".join(f"{c}={v}" for c, v in {**wdict, **({by: arm} if by else {})}.items())
            design = crossed_design(part, metric, factors, columns=columns, status_col=status_col, label=label)
            designs[arm] = design
            notes += [f"{label}: {n}" if label else n for n in design.notes]
            frame = decompose_design(design, confidence=confidence)
            for col, value in reversed(list({**wdict, **({by: arm} if by else {})}.items())):
                frame.insert(0, col, value)
            comp_frames.append(frame)
        if by and len(arms) > 1:
            base = baseline if baseline is not None and baseline in designs else arms[0]
            if baseline is not None and baseline not in designs:
                raise ConfigError(f"baseline arm {baseline!r} has no runs in {wdict or 'the table'}; arms: {', '.join(map(str, arms))}")
            for arm in arms:
                if arm == base:
                    continue
                frame = compare_designs(designs[arm], designs[base], confidence=confidence, n_draws=n_draws, seed=seed)
                frame.insert(0, "baseline", base)
                frame.insert(0, by, arm)
                for col, value in reversed(list(wdict.items())):
                    frame.insert(0, col, value)
                cmp_frames.append(frame)
    components = pd.concat(comp_frames, ignore_index=True)
    comparisons = (
        pd.concat(cmp_frames, ignore_index=True) if cmp_frames else pd.DataFrame(columns=[*within, *([by] if by else []), *COMPARISON_COLUMNS])
    )
    components.attrs.update(metric=metric, by=by, within=within, confidence=confidence)
    return Decomposition(components, comparisons, sorted(set(notes)), metric, by, within)


def simulate_cube(
    sizes: Sequence[int],
    sds: Mapping[Term | str, float],
    rng: np.random.Generator,
    r: int = 1,
    n_sims: int = 1,
    mean: float = 0.0,
) -> np.ndarray:
    """Synthetic crossed data with known components: shape (n_sims, *sizes, r).

    `sds` maps a term (tuple of factor axes) or "residual" to its standard deviation; each term's
    effect is drawn once per combination of its factors' levels and broadcast over the rest.
    Used by the coverage tests and bench/bench_study_variance.py.
    """
    k = len(sizes)
    y = np.full((n_sims, *sizes, r), mean, dtype=float)
    for term, sd in sds.items():
        if term == RESIDUAL:
            y += rng.normal(0.0, sd, y.shape)
            continue
        shape = [n_sims] + [sizes[a] if a in term else 1 for a in range(k)] + [1]
        y += rng.normal(0.0, sd, shape)
    return y
