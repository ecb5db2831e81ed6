"""Across-seed spread per arm: "does method X reduce the variance over seeds?", tested against a baseline arm.

A lower std is not evidence by itself with few seeds; the Brown-Forsythe test (Levene's test
centred on the median, robust to non-normal accuracies) is. The decomposition of that spread into
init, data-order and augmentation components is a study of its own (analysis.study.variance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from seedbench.analysis.stats.intervals import quiet, sample_sd, to_float
from seedbench.analysis.stats.pairwise import std_ratio_point
from seedbench.analysis.stats.pvalues import adjust_pvalues, check_correction
from seedbench.analysis.stats.runs import NAN, arm_order, iter_groups, require_columns, select_arm, split_by_status

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
    require_columns(df, [by, *within, metric])
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
                std=sample_sd(x) if len(x) > 1 else NAN,
                min=float(np.min(x)) if len(x) else NAN,
                max=float(np.max(x)) if len(x) else NAN,
                std_ratio=NAN,
                bf_p=NAN,
            )
            if base_values is not None and arm != base:
                row["std_ratio"] = std_ratio_point(x, base_values)
                if len(x) >= 2 and len(base_values) >= 2:
                    with quiet():
                        row["bf_p"] = to_float(stats.levene(x, base_values, center="median").pvalue)
            rows.append(row)
    columns = [*within, by, *VARIANCE_COLUMNS]
    out = pd.DataFrame(rows, columns=[c for c in columns if c not in ("bf_p_adj", "correction")])
    out["bf_p_adj"] = adjust_pvalues(out["bf_p"].to_numpy(dtype=float), correction)
    out["correction"] = correction
    out = out[columns]
    out.attrs.update(correction=correction, metric=metric, by=by, within=within, baseline=baseline)
    return out
