"""Equivalence: "A and B are the same within +-margin", which a non-significant difference is not.

TOST (Schuirmann 1987) claims equivalence when both one-sided Welch tests reject, i.e. the 90%
interval of the difference lies inside the margin (statsmodels' ``ttost_ind``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

from seedbench.analysis.stats.pvalues import adjust_pvalues
from seedbench.analysis.stats.runs import NAN, arm_order, iter_groups, select_arm, split_by_status
from seedbench.errors import ConfigError


def tost(a: np.ndarray, b: np.ndarray, margin: float, usevar: str = "unequal", confidence: float = 0.90) -> dict[str, float]:
    """Two one-sided Welch tests of |mean_a - mean_b| < margin (statsmodels' ttost_ind).

    p is the larger of the two one-sided p-values; the (1 - 2 alpha) = 90% Welch interval of the
    difference lies inside (-margin, margin) exactly when p < 0.05.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return {"tost_p": NAN, "tost_p_lower": NAN, "tost_p_upper": NAN, "diff_ci90_low": NAN, "diff_ci90_high": NAN}
    p, lower, upper = ttost_ind(a, b, -margin, margin, usevar=usevar)
    ci = stats.ttest_ind(a, b, equal_var=usevar == "pooled").confidence_interval(confidence)
    return {
        "tost_p": float(p),
        "tost_p_lower": float(lower[1]),
        "tost_p_upper": float(upper[1]),
        "diff_ci90_low": float(ci.low),
        "diff_ci90_high": float(ci.high),
    }


def equivalence(
    df: pd.DataFrame,
    metric: str,
    by: str,
    within: Sequence[str] = (),
    margin: float = 0.01,
    correction: str = "holm",
    *,
    status_col: str = "status",
    order: Sequence[Any] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """TOST for every pair of arms within each group: equivalent within +-margin, corrected across rows.

    Arm pairs come in the same order as stats.compare() (so the two tables merge on arm_a/arm_b).
    """
    if not margin > 0:
        raise ConfigError(f"--equivalence needs a positive margin in metric units (got {margin}), e.g. 0.005 for half an accuracy point")
    within = [within] if isinstance(within, str) else list(within)
    rows = []
    for key, group in iter_groups(df, within):
        arms = arm_order(group, by, order)
        values = {arm: split_by_status(select_arm(group, by, arm), metric, status_col).values for arm in arms}
        for a, b in itertools.combinations(arms, 2):
            rows.append({**key, "arm_a": a, "arm_b": b, "margin": margin, **tost(values[a], values[b], margin)})
    out = pd.DataFrame(
        rows, columns=[*within, "arm_a", "arm_b", "margin", "tost_p", "tost_p_lower", "tost_p_upper", "diff_ci90_low", "diff_ci90_high"]
    )
    out["tost_p_adj"] = adjust_pvalues(out["tost_p"].to_numpy(dtype=float), correction) if len(out) else []
    out["equivalent"] = out["tost_p_adj"] < alpha
    out.attrs.update(correction=correction, margin=margin, test="TOST, two one-sided Welch t-tests (Schuirmann 1987)")
    return out
