"""Which runs count, and how a run table is cut into groups and arms.

Every statistic of seedbench counts finished runs only, and reports the others next to its n: a
method that "wins" by crashing on hard seeds must stay visible. The filter, the status split and
the grouping live here once, so a table, a plot, a power estimate and a sequential look can never
disagree about which runs they counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# the statuses of seedbench.record.STATUSES that the statistics tell apart
FINISHED = "finished"
FAILED = "failed"
DIVERGED = "diverged"
NAN = float("nan")


def finished(runs: pd.DataFrame, status_col: str = "status") -> pd.DataFrame:
    """The finished runs; a table without a status column is taken to hold finished runs only (a hand-made frame)."""
    if status_col not in runs.columns:
        return runs
    return runs[runs[status_col].astype(object) == FINISHED]


def finite(values: Any) -> np.ndarray:
    """Values as float64 with NaN and +-inf removed (a diverged metric must not poison a mean)."""
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return x[np.isfinite(x)]


@dataclass
class StatusSplit:
    """One group's finished metric values and how many runs did not contribute, and why."""

    values: np.ndarray
    n_failed: int
    n_diverged: int
    n_other: int
    n_nonfinite: int


def split_by_status(group: pd.DataFrame, metric: str, status_col: str = "status") -> StatusSplit:
    """Finished runs' finite metric values, and the counts of everything left out."""
    done = finished(group, status_col)
    if status_col in group.columns:
        status = group[status_col].astype(object)
        n_failed = int((status == FAILED).sum())
        n_diverged = int((status == DIVERGED).sum())
        n_other = len(group) - len(done) - n_failed - n_diverged
    else:
        n_failed, n_diverged, n_other = 0, 0, 0
    raw = done[metric] if metric in done.columns else pd.Series([NAN] * len(done))
    values = finite(raw)
    return StatusSplit(values, n_failed, n_diverged, n_other, len(raw) - len(values))


def require_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """A KeyError naming the missing columns and the ones there are, before any work is done."""
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


def arm_order(group: pd.DataFrame, by: str, order: Sequence[Any] | None) -> list[Any]:
    """Arms in `order` first (those present), then any others sorted: an arm is never dropped."""
    present = sorted(pd.unique(group[by].astype(object)), key=str)
    listed = [a for a in (order or []) if a in present]
    return listed + [a for a in present if a not in listed]


def reference_arm(arms: Sequence[Any]) -> str | None:
    """The arm of the reference method (`Method.reference`, e.g. SGD) when it is among `arms`.

    The method registry says which methods are references; an arm is theirs when its label is the
    method's name, i.e. the method at its defaults ("sgd", not "sgd init=orthogonal +rewire").
    """
    from seedbench.registry import get_method, method_names

    present = {str(a) for a in arms}
    for name in method_names(aliases=False):
        if get_method(name).reference and name in present:
            return name
    return None


def default_baseline(arms: Sequence[Any], baseline: Any | None = None) -> Any | None:
    """The arm others are measured against: `baseline` when named, else the reference method's arm,
    else the first arm by name (a study without the reference still gets one)."""
    if baseline is not None:
        return baseline
    ordered = sorted(arms, key=str)
    return reference_arm(ordered) or (ordered[0] if ordered else None)


def reference_last(arms: Sequence[Any]) -> list[Any]:
    """Arms by name with the reference's last: in pairwise tables it is arm B, so diff = arm - reference."""
    ordered = sorted(arms, key=str)
    reference = reference_arm(ordered)
    return [a for a in ordered if a != reference] + ([reference] if reference is not None else [])
