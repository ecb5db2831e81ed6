"""`seedbench report`: a thin summary of a store (full statistics live in seedbench.analysis.stats)."""

from __future__ import annotations

import pandas as pd

from seedbench.analysis.stats.runs import DIVERGED, FAILED, FINISHED, finished
from seedbench.analysis.units import metric_label, scale_of

GROUP = ["method", "model", "dataset"]
SUMMARY_METRICS = ("val_acc", "test_acc")


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method x model x dataset: n finished (and diverged/failed), mean +- std of val/test acc.

    The accuracy columns are headed with their unit ("val_acc (%)"), as in every other table.
    """
    labels = [metric_label(m) for m in SUMMARY_METRICS]
    if runs.empty:
        return pd.DataFrame(columns=[*GROUP, "n", "diverged", "failed", "unfinished", *labels])
    rows = []
    for key, group in runs.groupby(GROUP, sort=True, dropna=False):
        done = finished(group)
        row = dict(zip(GROUP, key))
        row["n"] = len(done)
        row["diverged"] = int((group["status"] == DIVERGED).sum())
        row["failed"] = int((group["status"] == FAILED).sum())
        # running or interrupted: counted, so an incomplete group never looks complete
        row["unfinished"] = int((~group["status"].isin([FINISHED, DIVERGED, FAILED])).sum())
        for metric, label in zip(SUMMARY_METRICS, labels):
            values = pd.to_numeric(done.get(metric), errors="coerce").dropna() * scale_of(metric) if len(done) else pd.Series(dtype=float)
            row[label] = _mean_std(values)
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_std(values: pd.Series) -> str:
    if len(values) == 0:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} +- {values.std(ddof=1):.2f}"
