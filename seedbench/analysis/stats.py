"""Across-seed statistics: intervals, pairwise comparisons and variance tests over run tables.

Every function here is pure: it takes a DataFrame (one row per run, or plain arrays) and returns
numbers or a DataFrame, whatever stored the runs. The tests and corrections are scipy's and
statsmodels'; this module only decides which ones to run, on which runs, and how to name the
results so that a reader cannot mistake a raw p-value for a corrected one.

Conventions
-----------
* Only runs whose status is ``"finished"`` contribute numbers; failed, diverged and other runs are
  counted in their own columns so that a method that "wins" by crashing on hard seeds is visible.
* Every p-value column ``X_p`` comes with ``X_p_adj``: corrected across all rows of the returned
  table (one family per test), with the correction named in the ``correction`` column and in
  ``DataFrame.attrs["correction"]``.
* Bootstrap intervals are BCa with a seeded ``numpy.random.Generator``; when BCa is undefined
  (constant data) the percentile interval is used and the ``*_method`` entry says so.
"""

from __future__ import annotations

import gc
import itertools
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import effectsize_smd
from statsmodels.stats.multitest import multipletests

CONFIDENCE = 0.95
N_RESAMPLES = 10_000
SEED = 0
FINISHED = "finished"
FAILED = "failed"
DIVERGED = "diverged"
IQM_TRIM = 0.25
# statsmodels.stats.multitest.multipletests' method names
CORRECTIONS = (
    "holm",
    "fdr_bh",
    "bonferroni",
    "sidak",
    "holm-sidak",
    "simes-hochberg",
    "hommel",
    "fdr_by",
    "fdr_tsbh",
    "fdr_tsbky",
)
NAN = float("nan")

# p-value columns of compare(), in display order; each gets a *_p_adj twin.
COMPARE_P_COLUMNS = ("welch_p", "mwu_p", "bf_p", "levene_p", "paired_t_p", "wilcoxon_p")


# --------------------------------------------------------------------------------------------
# small helpers


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the degenerate-input warnings of scipy/numpy.

    n=1 groups and constant groups are routine in seed sweeps (one seed run so far, a method that
    always lands on the same accuracy); their statistics come back as NaN, which the output
    already shows, so the warnings would only be noise. All scipy.stats warnings of this kind
    (DegenerateDataWarning, ConstantInputWarning, SmallSampleWarning) subclass RuntimeWarning.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return NAN


def _finite(values: Any) -> np.ndarray:
    """Values as float64 with NaN and +-inf removed (a diverged metric must not poison a mean)."""
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return x[np.isfinite(x)]


def check_correction(correction: str) -> str:
    """Fail early on a misspelt correction, before any test has run."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; choose one of {', '.join(CORRECTIONS)}")
    return correction


def adjust_pvalues(pvalues: Sequence[float] | np.ndarray, correction: str = "holm") -> np.ndarray:
    """Multiple-comparison adjusted p-values; NaN entries (tests that could not run) stay NaN.

    NaNs are left out of the family rather than counted: a test that could not be computed is not
    a comparison that was made.
    """
    check_correction(correction)
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, NAN)
    ok = np.isfinite(p)
    if ok.any():
        with _frozen_gc():
            out[ok] = multipletests(p[ok], method=correction)[1]
    return out


@contextmanager
def _frozen_gc() -> Iterator[None]:
    """Make statsmodels' gc.collect() cheap: its Holm path collects on every call.

    With pandas, scipy and matplotlib loaded a full collection costs ~0.1 s, i.e. seconds per
    report for a handful of p-values. Freezing the existing heap first (gc.freeze) makes that
    collection scan only new objects; nothing is changed except what the collector looks at. Left
    alone when the process already froze its heap itself (e.g. before forking workers).
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str


def bootstrap_ci(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """A seeded BCa bootstrap interval, falling back to percentile when BCa is undefined.

    BCa corrects the percentile interval for bias and skew, which matters for accuracies piled
    up near a ceiling. It needs a non-degenerate jackknife; for constant data it is NaN, and the
    percentile interval (then [c, c]) is the honest answer, labelled as such. Each call uses its
    own Generator from `seed`, so a result does not depend on what was computed before it.
    `statistic` must accept an ``axis`` keyword (scipy's vectorized form).
    """
    if any(len(s) < 2 for s in samples):
        return Interval(NAN, NAN, "none (n<2)")
    for method, label in (("BCa", "BCa"), ("percentile", "percentile (BCa degenerate)")):
        with _quiet():
            res = stats.bootstrap(
                tuple(samples),
                statistic,
                n_resamples=n_resamples,
                method=method,
                confidence_level=confidence,
                vectorized=True,
                rng=np.random.default_rng(seed),
            )
        low, high = _float(res.confidence_interval.low), _float(res.confidence_interval.high)
        if not (math.isnan(low) or math.isnan(high)):
            return Interval(low, high, label)
    return Interval(NAN, NAN, "none (degenerate)")


def _sd(x: np.ndarray) -> float:
    """Sample std (ddof=1), exactly 0 for constant data (np.std leaves ~1e-16 rounding there)."""
    return 0.0 if np.ptp(x) == 0 else float(np.std(x, ddof=1))


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.trim_mean(x, IQM_TRIM, axis=axis)


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _std_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.std(a, axis=axis, ddof=1) / np.std(b, axis=axis, ddof=1)


# --------------------------------------------------------------------------------------------
# 1. one group


def summarize(
    values: Any,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """Location, spread and intervals of one arm's per-seed results.

    Intervals come first because with 3-10 seeds the point estimate alone says little: the BCa
    bootstrap interval makes no normality assumption, the t-interval is the classical one, and
    their disagreement is itself a warning sign. The IQM (mean of the middle 50%) is robust to
    the occasional bad seed without discarding it the way a median does. Non-finite values are
    dropped and counted in ``n_nonfinite``; n=0 and n=1 give NaN intervals instead of errors.
    """
    raw = np.asarray(values, dtype=object).ravel()
    x = _finite(raw)
    n_raw = len(raw)
    n = len(x)
    out: dict[str, Any] = {
        "n": n,
        "n_nonfinite": n_raw - n,
        "mean": NAN,
        "std": NAN,
        "sem": NAN,
        "mean_ci_low": NAN,
        "mean_ci_high": NAN,
        "mean_ci_method": "none (n<2)",
        "mean_t_ci_low": NAN,
        "mean_t_ci_high": NAN,
        "median": NAN,
        "iqm": NAN,
        "iqm_ci_low": NAN,
        "iqm_ci_high": NAN,
        "iqm_ci_method": "none (n<2)",
        "min": NAN,
        "max": NAN,
        "confidence": confidence,
    }
    if n == 0:
        return out
    out.update(
        mean=float(np.mean(x)),
        median=float(np.median(x)),
        iqm=float(_iqm(x)),
        min=float(np.min(x)),
        max=float(np.max(x)),
    )
    if n < 2:
        return out
    with _quiet():
        out["std"] = _sd(x)
        out["sem"] = float(stats.sem(x))
        t_ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    out["mean_t_ci_low"], out["mean_t_ci_high"] = _float(t_ci.low), _float(t_ci.high)
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    mean_ci = bootstrap_ci((x,), _mean, **boot)
    iqm_ci = bootstrap_ci((x,), _iqm, **boot)
    out.update(mean_ci_low=mean_ci.low, mean_ci_high=mean_ci.high, mean_ci_method=mean_ci.method)
    out.update(iqm_ci_low=iqm_ci.low, iqm_ci_high=iqm_ci.high, iqm_ci_method=iqm_ci.method)
    return out


@dataclass
class StatusSplit:
    """One group's finished metric values and how many runs did not contribute, and why."""

    values: np.ndarray
    n_failed: int
    n_diverged: int
    n_other: int
    n_nonfinite: int


def split_by_status(group: pd.DataFrame, metric: str, status_col: str = "status") -> StatusSplit:
    """Finished runs' finite metric values, and the counts of everything left out.

    A table without a status column is taken to hold finished runs only (e.g. a hand-made frame).
    """
    if status_col in group.columns:
        status = group[status_col].astype(object)
        finished = group[status == FINISHED]
        n_failed = int((status == FAILED).sum())
        n_diverged = int((status == DIVERGED).sum())
        n_other = len(group) - len(finished) - n_failed - n_diverged
    else:
        finished, n_failed, n_diverged, n_other = group, 0, 0, 0
    raw = finished[metric] if metric in finished.columns else pd.Series([NAN] * len(finished))
    values = _finite(raw)
    return StatusSplit(values, n_failed, n_diverged, n_other, len(raw) - len(values))


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the table (columns: {list(df.columns)})")


def iter_groups(df: pd.DataFrame, keys: Sequence[str]) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """(key dict, sub-frame) per group; one empty-key group when there are no keys."""
    if not keys:
        yield {}, df
        return
    for key, sub in df.groupby(list(keys), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(keys, key)), sub


def select_arm(group: pd.DataFrame, by: str, arm: Any) -> pd.DataFrame:
    """Rows of one arm; a missing arm name (None/NaN, e.g. runs without a method) is an arm too."""
    if pd.isna(arm):
        return group[group[by].isna()]
    return group[group[by] == arm]


def summarize_groups(
    df: pd.DataFrame,
    metric: str,
    by: Sequence[str],
    status_col: str = "status",
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> pd.DataFrame:
    """summarize() per group of finished runs, next to the counts of runs that did not finish.

    Failed and diverged runs are reported, never silently dropped: a mean over the seeds that
    survived overstates a method that diverges on the rest.
    """
    by = [by] if isinstance(by, str) else list(by)
    _check_columns(df, [*by, metric])
    rows = []
    for key, group in iter_groups(df, by):
        split = split_by_status(group, metric, status_col)
        summary = summarize(split.values, confidence=confidence, n_resamples=n_resamples, seed=seed)
        summary["n_nonfinite"] = split.n_nonfinite
        rows.append(
            {
                **key,
                "n": summary.pop("n"),
                "n_failed": split.n_failed,
                "n_diverged": split.n_diverged,
                "n_other": split.n_other,
                **summary,
            }
        )
    columns = [*by, "n", "n_failed", "n_diverged", "n_other", *_SUMMARY_KEYS]
    out = pd.DataFrame(rows, columns=columns)
    out.attrs.update(metric=metric, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return out


_SUMMARY_KEYS = [k for k in summarize([]) if k != "n"]


# --------------------------------------------------------------------------------------------
# 2. pairwise comparisons


def arm_order(group: pd.DataFrame, by: str, order: Sequence[Any] | None) -> list[Any]:
    """Arms in `order` first (those present), then any others sorted: an arm is never dropped."""
    present = sorted(pd.unique(group[by].astype(object)), key=str)
    listed = [a for a in (order or []) if a in present]
    return listed + [a for a in present if a not in listed]


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected standardized mean difference (A-B)/pooled sd, statsmodels' effectsize_smd.

    With few seeds Cohen's d overstates the effect; Hedges' correction J = 1 - 3/(4(nA+nB)-9)
    shrinks it. NaN when either arm has <2 values or both are constant (no scale to standardize by).
    """
    if len(a) < 2 or len(b) < 2:
        return NAN
    sa, sb = _sd(a), _sd(b)
    if sa == 0 and sb == 0:
        return NAN
    g, _ = effectsize_smd(np.mean(a), sa, len(a), np.mean(b), sb, len(b))
    return float(g)


def _independent_tests(a: np.ndarray, b: np.ndarray, confidence: float) -> dict[str, float]:
    """Location and scale tests for two unpaired arms (NaN where a test is undefined)."""
    out = dict.fromkeys(
        ["diff_ci_low", "diff_ci_high", "welch_t", "welch_df", "welch_p", "mwu_u", "mwu_p", "p_a_gt_b",
         "bf_p", "levene_p"],
        NAN,
    )  # fmt: skip
    if len(a) and len(b):
        with _quiet():
            mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
        out["mwu_u"], out["mwu_p"] = _float(mwu.statistic), _float(mwu.pvalue)
        # scipy's U is for the first sample: #(a > b) + #(a == b)/2, the common-language effect size
        out["p_a_gt_b"] = out["mwu_u"] / (len(a) * len(b))
    if len(a) >= 2 and len(b) >= 2:
        with _quiet():
            welch = stats.ttest_ind(a, b, equal_var=False)
            ci = welch.confidence_interval(confidence)
            out["bf_p"] = _float(stats.levene(a, b, center="median").pvalue)
            out["levene_p"] = _float(stats.levene(a, b, center="mean").pvalue)
        out.update(welch_t=_float(welch.statistic), welch_df=_float(welch.df), welch_p=_float(welch.pvalue))
        out["diff_ci_low"], out["diff_ci_high"] = _float(ci.low), _float(ci.high)
    return out


def _per_key(group: pd.DataFrame, metric: str, key: str) -> pd.Series:
    """Finite metric per pairing key; repeated runs of one key (retries, duplicates) are averaged."""
    values = pd.to_numeric(group[metric], errors="coerce")
    ok = np.isfinite(values.to_numpy(dtype=float))
    return values[ok].groupby(group.loc[ok, key]).mean()


def _paired_tests(pa: pd.Series, pb: pd.Series, confidence: float) -> dict[str, float]:
    """Paired t and Wilcoxon signed-rank on the pairing keys both arms share, and only those.

    Pairing removes the seed-to-seed variation the arms have in common (same data order, same
    init stream), which is often most of it; seeds run in one arm only cannot be paired and are
    left to the unpaired tests.
    """
    shared = pa.index.intersection(pb.index)
    out = {
        "paired_n": len(shared),
        "paired_diff": NAN,
        "paired_diff_ci_low": NAN,
        "paired_diff_ci_high": NAN,
        "paired_t_p": NAN,
        "wilcoxon_p": NAN,
    }
    if len(shared) == 0:
        return out
    a, b = pa.loc[shared].to_numpy(float), pb.loc[shared].to_numpy(float)
    d = a - b
    out["paired_diff"] = float(np.mean(d))
    if len(shared) < 2 or np.all(d == 0):
        return out  # no within-seed variation to test against
    with _quiet():
        rel = stats.ttest_rel(a, b)
        ci = rel.confidence_interval(confidence)
        wil = stats.wilcoxon(a, b)
    out["paired_t_p"] = _float(rel.pvalue)
    out["paired_diff_ci_low"], out["paired_diff_ci_high"] = _float(ci.low), _float(ci.high)
    out["wilcoxon_p"] = _float(wil.pvalue)
    return out


def _std_ratio_point(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or len(b) < 2:
        return NAN
    sa, sb = _sd(a), _sd(b)
    if sb == 0:
        return NAN if sa == 0 else math.inf
    return sa / sb


def compare_arms(
    a: np.ndarray,
    b: np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """All unpaired statistics of one A-vs-B comparison (raw p-values; compare() corrects them)."""
    a, b = _finite(a), _finite(b)
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    diff_boot = bootstrap_ci((a, b), _mean_diff, **boot)
    ratio_boot = bootstrap_ci((a, b), _std_ratio, **boot)
    return {
        "n_a": len(a),
        "n_b": len(b),
        "mean_a": float(np.mean(a)) if len(a) else NAN,
        "mean_b": float(np.mean(b)) if len(b) else NAN,
        "std_a": _sd(a) if len(a) > 1 else NAN,
        "std_b": _sd(b) if len(b) > 1 else NAN,
        "diff": float(np.mean(a) - np.mean(b)) if len(a) and len(b) else NAN,
        **_independent_tests(a, b, confidence),
        "diff_boot_ci_low": diff_boot.low,
        "diff_boot_ci_high": diff_boot.high,
        "diff_boot_method": diff_boot.method,
        "std_ratio": _std_ratio_point(a, b),
        "std_ratio_ci_low": ratio_boot.low,
        "std_ratio_ci_high": ratio_boot.high,
        "std_ratio_ci_method": ratio_boot.method,
        "hedges_g": hedges_g(a, b),
    }


COMPARE_COLUMNS = [
    "arm_a", "arm_b", "n_a", "n_b", "n_failed_a", "n_failed_b", "n_diverged_a", "n_diverged_b",
    "mean_a", "mean_b", "std_a", "std_b",
    "diff", "diff_ci_low", "diff_ci_high", "diff_boot_ci_low", "diff_boot_ci_high", "diff_boot_method",
    "welch_t", "welch_df", "welch_p", "welch_p_adj",
    "mwu_u", "mwu_p", "mwu_p_adj", "p_a_gt_b",
    "bf_p", "bf_p_adj", "levene_p", "levene_p_adj",
    "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", "std_ratio_ci_method",
    "hedges_g",
    "paired_n", "paired_diff", "paired_diff_ci_low", "paired_diff_ci_high",
    "paired_t_p", "paired_t_p_adj", "wilcoxon_p", "wilcoxon_p_adj",
    "correction",
]  # fmt: skip


def compare(
    df: pd.DataFrame,
    metric: str,
    by: str,
    within: Sequence[str] = (),
    pair_on: str | None = "seed",
    correction: str = "holm",
    *,
    status_col: str = "status",
    order: Sequence[Any] | None = None,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> pd.DataFrame:
    """Every pair of arms (values of `by`) within each group of `within`: differences and tests.

    Location (Welch, Mann-Whitney), scale (Brown-Forsythe, Levene, std ratio) and, when the
    arms share `pair_on` keys, paired tests on the shared keys only. Arm order is `order` or the
    sorted arm names; diff and P(A>B) are A minus/over B. Every p-value column is corrected across
    all rows returned (one family per test) with `correction`, because reading the smallest
    of many uncorrected p-values is how seed sweeps produce false wins.
    """
    within = [within] if isinstance(within, str) else list(within)
    check_correction(correction)
    _check_columns(df, [by, *within, metric])
    pairing = pair_on if pair_on is not None and pair_on in df.columns else None
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    rows = []
    for key, group in iter_groups(df, within):
        rows += [{**key, **row} for row in _compare_group(group, metric, by, pairing, status_col, order, boot)]
    raw_columns = [c for c in COMPARE_COLUMNS if not c.endswith("_adj") and c != "correction"]
    out = pd.DataFrame(rows, columns=[*within, *raw_columns])
    for col in COMPARE_P_COLUMNS:
        out[f"{col}_adj"] = adjust_pvalues(out[col].to_numpy(dtype=float), correction)
    out["correction"] = correction
    out = out[[*within, *COMPARE_COLUMNS]]
    out.attrs.update(
        correction=correction,
        metric=metric,
        by=by,
        within=within,
        pair_on=pairing,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        families="each *_p column is corrected separately across all rows",
    )
    return out


def _compare_group(
    group: pd.DataFrame,
    metric: str,
    by: str,
    pairing: str | None,
    status_col: str,
    order: Sequence[Any] | None,
    boot: dict[str, Any],
) -> list[dict[str, Any]]:
    """The uncorrected rows of compare() for one `within` group, one per pair of arms."""
    arms = arm_order(group, by, order)
    parts = {arm: select_arm(group, by, arm) for arm in arms}
    splits = {arm: split_by_status(part, metric, status_col) for arm, part in parts.items()}
    no_keys = pd.Series(dtype=float)
    keyed = {arm: _per_key(_finished(part, status_col), metric, pairing) if pairing else no_keys for arm, part in parts.items()}
    rows = []
    for arm_a, arm_b in itertools.combinations(arms, 2):
        sa, sb = splits[arm_a], splits[arm_b]
        row: dict[str, Any] = {"arm_a": arm_a, "arm_b": arm_b}
        row.update(n_failed_a=sa.n_failed, n_failed_b=sb.n_failed, n_diverged_a=sa.n_diverged, n_diverged_b=sb.n_diverged)
        row.update(compare_arms(sa.values, sb.values, **boot))
        row.update(_paired_tests(keyed[arm_a], keyed[arm_b], boot["confidence"]))
        rows.append(row)
    return rows


def _finished(group: pd.DataFrame, status_col: str) -> pd.DataFrame:
    if status_col not in group.columns:
        return group
    return group[group[status_col].astype(object) == FINISHED]


# --------------------------------------------------------------------------------------------
# 3. variance study


VARIANCE_COLUMNS = [
    "baseline", "n", "n_failed", "n_diverged", "mean", "std", "min", "max",
    "std_ratio", "bf_p", "bf_p_adj", "correction",
]  # fmt: skip


def variance_study(
    df: pd.DataFrame,
    metric: str,
    by: str,
    within: Sequence[str] = (),
    baseline: Any | None = None,
    correction: str = "holm",
    *,
    status_col: str = "status",
    order: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Per arm spread (mean, std, min, max) and a Brown-Forsythe test against the baseline arm.

    This answers "does method X reduce across-seed variance?" directly: a lower std is not
    evidence by itself with few seeds, the Brown-Forsythe test (Levene's test centred on the
    median, robust to non-normal accuracies) is. `baseline` is a named arm, or else the first
    arm of each group (`order` or sorted). The baseline row has NaN tests; p-values are corrected
    across all non-baseline rows.
    """
    within = [within] if isinstance(within, str) else list(within)
    check_correction(correction)
    _check_columns(df, [by, *within, metric])
    rows = []
    for key, group in iter_groups(df, within):
        arms = arm_order(group, by, order)
        base = baseline if baseline is not None else (arms[0] if arms else None)
        arms = [a for a in arms if a == base] + [a for a in arms if a != base]  # baseline row first
        splits = {arm: split_by_status(select_arm(group, by, arm), metric, status_col) for arm in arms}
        base_values = splits[base].values if base in splits else None
        for arm in arms:
            s = splits[arm]
            x = s.values
            row = {**key, by: arm, "baseline": base, "n": len(x), "n_failed": s.n_failed, "n_diverged": s.n_diverged}
            row.update(
                mean=float(np.mean(x)) if len(x) else NAN,
                std=_sd(x) if len(x) > 1 else NAN,
                min=float(np.min(x)) if len(x) else NAN,
                max=float(np.max(x)) if len(x) else NAN,
                std_ratio=NAN,
                bf_p=NAN,
            )
            if base_values is not None and arm != base:
                row["std_ratio"] = _std_ratio_point(x, base_values)
                if len(x) >= 2 and len(base_values) >= 2:
                    with _quiet():
                        row["bf_p"] = _float(stats.levene(x, base_values, center="median").pvalue)
            rows.append(row)
    columns = [*within, by, *VARIANCE_COLUMNS]
    out = pd.DataFrame(rows, columns=[c for c in columns if c not in ("bf_p_adj", "correction")])
    out["bf_p_adj"] = adjust_pvalues(out["bf_p"].to_numpy(dtype=float), correction)
    out["correction"] = correction
    out = out[columns]
    out.attrs.update(correction=correction, metric=metric, by=by, within=within, baseline=baseline)
    return out
