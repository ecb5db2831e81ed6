"""One arm's numbers: bootstrap intervals, the IQM and the per-group summary of a run table.

Intervals come before point estimates: with 3-10 seeds a mean alone says little. Bootstrap
intervals are BCa with a seeded ``numpy.random.Generator``; when BCa is undefined (constant data)
the percentile interval is used and the ``*_method`` entry says so. The IQM is defined here once;
the across-task aggregate (stats.aggregate) uses the same definition.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from seedbench.analysis.stats.runs import NAN, finite, iter_groups, require_columns, split_by_status

CONFIDENCE = 0.95
N_RESAMPLES = 10_000
SEED = 0
IQM_TRIM = 0.25  # the interquartile mean: trim 25% at each end (rliable's definition)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the degenerate-input warnings of scipy/numpy.

    n=1 groups and constant groups are routine in seed sweeps (one seed run so far, a method that
    always lands on the same accuracy); their statistics come back as NaN, which the output
    already shows, so the warnings would only be noise. All scipy.stats warnings of this kind
    (DegenerateDataWarning, ConstantInputWarning, SmallSampleWarning) subclass RuntimeWarning.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def to_float(x: Any) -> float:
    """A statistic as a plain float; NaN where scipy returned nothing usable."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return NAN


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
        with quiet():
            res = stats.bootstrap(
                tuple(samples),
                statistic,
                n_resamples=n_resamples,
                method=method,
                confidence_level=confidence,
                vectorized=True,
                rng=np.random.default_rng(seed),
            )
        low, high = to_float(res.confidence_interval.low), to_float(res.confidence_interval.high)
        if not (math.isnan(low) or math.isnan(high)):
            return Interval(low, high, label)
    return Interval(NAN, NAN, "none (degenerate)")


def sample_sd(x: np.ndarray) -> float:
    """Sample std (ddof=1), exactly 0 for constant data (np.std leaves ~1e-16 rounding there)."""
    return 0.0 if np.ptp(x) == 0 else float(np.std(x, ddof=1))


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The interquartile mean: robust to the occasional bad seed without discarding it like a median."""
    return stats.trim_mean(x, IQM_TRIM, axis=axis)


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
    x = finite(raw)
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
        iqm=float(iqm(x)),
        min=float(np.min(x)),
        max=float(np.max(x)),
    )
    if n < 2:
        return out
    with quiet():
        out["std"] = sample_sd(x)
        out["sem"] = float(stats.sem(x))
        t_ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    out["mean_t_ci_low"], out["mean_t_ci_high"] = to_float(t_ci.low), to_float(t_ci.high)
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    mean_ci = bootstrap_ci((x,), _mean, **boot)
    iqm_ci = bootstrap_ci((x,), iqm, **boot)
    out.update(mean_ci_low=mean_ci.low, mean_ci_high=mean_ci.high, mean_ci_method=mean_ci.method)
    out.update(iqm_ci_low=iqm_ci.low, iqm_ci_high=iqm_ci.high, iqm_ci_method=iqm_ci.method)
    return out


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
    require_columns(df, [*by, metric])
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
