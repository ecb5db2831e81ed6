"""The unit every number of a metric is shown in: accuracies in percent, everything else as stored.

Runs store accuracies as fractions (0.9134) because that is what training computes; people read
and publish them in percent (91.34). A report that prints 91.34 in its table and 0.9134 in its
plot makes the reader convert, and sooner or later compare a percentage with a fraction. So the
analysis converts once, at its entrance, and names the unit wherever a number appears:
``val_acc (%)``. Losses and other metrics keep their stored scale and get no unit.

A metric is an accuracy when one of the words of its name (split at "_") is ``acc`` or
``accuracy``: train_acc, val_acc, best_val_acc, val_acc_last10, test_acc, a plugin's top5_acc.

This module sits below stats/ and imports neither scipy nor pandas at import time, so the command
line can check a metric and a target before the statistics are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PERCENT = "%"
ACCURACY_WORDS = frozenset({"acc", "accuracy"})


def is_accuracy(metric: str) -> bool:
    return any(word in ACCURACY_WORDS for word in str(metric).lower().split("_"))


def unit_of(metric: str) -> str | None:
    """ "%" for an accuracy, None for a metric shown as stored."""
    return PERCENT if is_accuracy(metric) else None


def scale_of(metric: str) -> float:
    """What a stored value is multiplied by to be shown: 100 for an accuracy, 1 otherwise."""
    return 100.0 if is_accuracy(metric) else 1.0


def with_unit(name: str, unit: str | None) -> str:
    """ "val_acc" -> "val_acc (%)"; unchanged without a unit."""
    return f"{name} ({unit})" if unit else str(name)


def metric_label(metric: str) -> str:
    """The metric's name with its unit: the header of every column and axis that holds its values."""
    return with_unit(metric, unit_of(metric))


def in_display_units(frame: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str]:
    """A copy of `frame` whose metric column is in display units and named by metric_label.

    Statistics computed on the result are in display units throughout (means, differences,
    intervals, mde, margins), and the column name carries the unit into every table and plot
    drawn from it. Non-numeric values become NaN, which every statistic already drops and counts.
    """
    import pandas as pd

    label = metric_label(metric)
    values = pd.to_numeric(frame[metric], errors="coerce") * scale_of(metric)
    return frame.drop(columns=[metric]).assign(**{label: values}), label


def name_units(frame: pd.DataFrame, columns: Iterable[str], unit: str | None) -> pd.DataFrame:
    """`columns` (those present) renamed "<name> (<unit>)": a header that says what its numbers are in."""
    if not unit:
        return frame
    present = [c for c in columns if c in frame.columns]
    out = frame.rename(columns={c: with_unit(c, unit) for c in present})
    out.attrs = dict(frame.attrs)
    return out
