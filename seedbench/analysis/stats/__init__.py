"""The statistics primitives: which runs count, intervals, pairwise tests, p-value correction, spread.

Every function here is pure: it takes a DataFrame (one row per run, or plain arrays) and returns
numbers or a DataFrame, whatever stored the runs. The tests and corrections are scipy's and
statsmodels'; this package only decides which ones to run, on which runs, and how to name the
results so that a reader cannot mistake a raw p-value for a corrected one.

Conventions
-----------
* Only runs whose status is ``"finished"`` contribute numbers (stats.runs); failed, diverged and
  other runs are counted in their own columns so that a method that "wins" by crashing on hard
  seeds is visible.
* Every p-value column ``X_p`` comes with ``X_p_adj``: corrected across all rows of the returned
  table (one family per test), with the correction named in the ``correction`` column and in
  ``DataFrame.attrs["correction"]`` (stats.pvalues).
* Bootstrap intervals are BCa with a seeded ``numpy.random.Generator``; when BCa is undefined
  (constant data) the percentile interval is used and the ``*_method`` entry says so (stats.intervals).

Modules: runs (the finished filter, status split, groups and arms, the reference arm), intervals
(bootstrap, IQM, per-group summaries), pvalues, pairwise (compare), spread (variance_study),
time_to_target (first epoch/step/seconds at a target, censored medians, AlgoPerf-style profiles),
aggregate (across tasks: IQM, P(A>B), performance profiles), ranks (Friedman, Nemenyi),
equivalence (TOST). The
names below are the one-table API, importable as ``seedbench.analysis.stats.<name>``.
"""

from seedbench.analysis.stats.intervals import (
    CONFIDENCE,
    IQM_TRIM,
    N_RESAMPLES,
    SEED,
    Interval,
    bootstrap_ci,
    iqm,
    summarize,
    summarize_groups,
)
from seedbench.analysis.stats.pairwise import COMPARE_COLUMNS, COMPARE_P_COLUMNS, compare, compare_arms, hedges_g
from seedbench.analysis.stats.pvalues import CORRECTIONS, adjust_pvalues, check_correction
from seedbench.analysis.stats.runs import (
    DIVERGED,
    FAILED,
    FINISHED,
    NAN,
    StatusSplit,
    arm_order,
    finished,
    iter_groups,
    select_arm,
    split_by_status,
)
from seedbench.analysis.stats.spread import VARIANCE_COLUMNS, variance_study

__all__ = [
    "COMPARE_COLUMNS",
    "COMPARE_P_COLUMNS",
    "CONFIDENCE",
    "CORRECTIONS",
    "DIVERGED",
    "FAILED",
    "FINISHED",
    "IQM_TRIM",
    "NAN",
    "N_RESAMPLES",
    "SEED",
    "VARIANCE_COLUMNS",
    "Interval",
    "StatusSplit",
    "adjust_pvalues",
    "arm_order",
    "bootstrap_ci",
    "check_correction",
    "compare",
    "compare_arms",
    "finished",
    "hedges_g",
    "iqm",
    "iter_groups",
    "select_arm",
    "split_by_status",
    "summarize",
    "summarize_groups",
    "variance_study",
]
