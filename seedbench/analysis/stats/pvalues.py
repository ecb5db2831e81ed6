"""Multiple-comparison correction: every table with p-values corrects them here, one family per test.

Reading the smallest of many uncorrected p-values is how seed sweeps produce false wins, so each
p-value column ``X_p`` of seedbench comes with ``X_p_adj``, corrected by statsmodels'
``multipletests`` with the correction named in the table.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from statsmodels.stats.multitest import multipletests

from seedbench.analysis.stats.runs import NAN

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
