"""Every pair of arms: differences with intervals, location and scale tests, effect sizes, paired tests.

Location (Welch, Mann-Whitney), scale (Brown-Forsythe, Levene, std ratio), Hedges' g and, where
the arms share seeds, paired tests; the tests are scipy's and statsmodels'. Every p-value column
is corrected across the rows of the returned table (stats.pvalues) so that a raw p-value is never
mistaken for a corrected one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import effectsize_smd

from seedbench.analysis.stats.intervals import CONFIDENCE, N_RESAMPLES, SEED, bootstrap_ci, quiet, sample_sd, to_float
from seedbench.analysis.stats.pvalues import adjust_pvalues, check_correction
from seedbench.analysis.stats.runs import NAN, arm_order, finished, finite, iter_groups, require_columns, select_arm, split_by_status

# p-value columns of compare(), in display order; each gets a *_p_adj twin.
COMPARE_P_COLUMNS = ("welch_p", "mwu_p", "bf_p", "levene_p", "paired_t_p", "wilcoxon_p")


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _std_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.std(a, axis=axis, ddof=1) / np.std(b, axis=axis, ddof=1)


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected standardized mean difference (A-B)/pooled sd, statsmodels' effectsize_smd.

    With few seeds Cohen's d overstates the effect; Hedges' correction J = 1 - 3/(4(nA+nB)-9)
    shrinks it. NaN when either arm has <2 values or both are constant (no scale to standardize by).
    """
    if len(a) < 2 or len(b) < 2:
        return NAN
    sa, sb = sample_sd(a), sample_sd(b)
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
        with quiet():
            mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
        out["mwu_u"], out["mwu_p"] = to_float(mwu.statistic), to_float(mwu.pvalue)
        # scipy's U is for the first sample: #(a > b) + #(a == b)/2, the common-language effect size
        out["p_a_gt_b"] = out["mwu_u"] / (len(a) * len(b))
    if len(a) >= 2 and len(b) >= 2:
        with quiet():
            welch = stats.ttest_ind(a, b, equal_var=False)
            ci = welch.confidence_interval(confidence)
            out["bf_p"] = to_float(stats.levene(a, b, center="median").pvalue)
            out["levene_p"] = to_float(stats.levene(a, b, center="mean").pvalue)
        out.update(welch_t=to_float(welch.statistic), welch_df=to_float(welch.df), welch_p=to_float(welch.pvalue))
        out["diff_ci_low"], out["diff_ci_high"] = to_float(ci.low), to_float(ci.high)
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
    with quiet():
        rel = stats.ttest_rel(a, b)
        ci = rel.confidence_interval(confidence)
        wil = stats.wilcoxon(a, b)
    out["paired_t_p"] = to_float(rel.pvalue)
    out["paired_diff_ci_low"], out["paired_diff_ci_high"] = to_float(ci.low), to_float(ci.high)
    out["wilcoxon_p"] = to_float(wil.pvalue)
    return out


def std_ratio_point(a: np.ndarray, b: np.ndarray) -> float:
    """sd(a) / sd(b); inf when only b is constant, NaN when both are or an arm has < 2 values."""
    if len(a) < 2 or len(b) < 2:
        return NAN
    sa, sb = sample_sd(a), sample_sd(b)
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
    a, b = finite(a), finite(b)
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    diff_boot = bootstrap_ci((a, b), _mean_diff, **boot)
    ratio_boot = bootstrap_ci((a, b), _std_ratio, **boot)
    return {
        "n_a": len(a),
        "n_b": len(b),
        "mean_a": float(np.mean(a)) if len(a) else NAN,
        "mean_b": float(np.mean(b)) if len(b) else NAN,
        "std_a": sample_sd(a) if len(a) > 1 else NAN,
        "std_b": sample_sd(b) if len(b) > 1 else NAN,
        "diff": float(np.mean(a) - np.mean(b)) if len(a) and len(b) else NAN,
        **_independent_tests(a, b, confidence),
        "diff_boot_ci_low": diff_boot.low,
        "diff_boot_ci_high": diff_boot.high,
        "diff_boot_method": diff_boot.method,
        "std_ratio": std_ratio_point(a, b),
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
    require_columns(df, [by, *within, metric])
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
    keyed = {arm: _per_key(finished(part, status_col), metric, pairing) if pairing else no_keys for arm, part in parts.items()}
    rows = []
    for arm_a, arm_b in itertools.combinations(arms, 2):
        sa, sb = splits[arm_a], splits[arm_b]
        row: dict[str, Any] = {"arm_a": arm_a, "arm_b": arm_b}
        row.update(n_failed_a=sa.n_failed, n_failed_b=sb.n_failed, n_diverged_a=sa.n_diverged, n_diverged_b=sb.n_diverged)
        row.update(compare_arms(sa.values, sb.values, **boot))
        row.update(_paired_tests(keyed[arm_a], keyed[arm_b], boot["confidence"]))
        rows.append(row)
    return rows
