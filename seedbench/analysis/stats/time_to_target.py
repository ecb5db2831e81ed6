"""Time to target: when a run's validation accuracy first reaches a target, per arm and across workloads.

Final accuracy cannot tell a method that gets to 90% in two epochs from one that needs nine. The
time to a target (AlgoPerf's time-to-result; Dahl et al. 2023) can, read from each run's per-epoch
history: the first epoch whose metric is >= the target, the updates made by then (`updates`, the
optimizer steps) and the wall-clock seconds summed over the epochs up to and including it.

**Censoring.** A run that never reaches the target within its training budget is not dropped: it
counts as reached "never" (+inf), as AlgoPerf scores it. The median over seeds is then well
defined as long as more than half of the runs reached the target, and is "never" otherwise; the
fraction that reached it is reported beside it. A diverged run is a real outcome of training (it
counts, reached or not); failed and still-running runs have no complete history and are counted
apart (`n_left_out`), like every other statistic's failed runs.

**Interval.** The median's interval is distribution-free: the order-statistic interval of the
binomial sign test (`scipy.stats.quantile_test(...).confidence_interval`), which needs no shape
for the time distribution and is unaffected by the +inf of censored runs (it only uses ranks).
It needs 6 runs for 95%; with 2-5 runs the widest such interval, [min, max], covers the median
with probability 1 - 2 * 0.5^n (0.94 at n = 5), and `ci_level` says so.

**Performance profiles** (Dolan & More 2002, as AlgoPerf uses them): per workload (model x
dataset) each arm's median time is divided by the best arm's; an arm's profile at tau is the
fraction of workloads on which that ratio is <= tau. rho(1) is the share of workloads an arm was
fastest on; the height at large tau, the share it reached the target on at all. A workload no arm
reached, or one an arm did not run, counts as never for that arm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from seedbench.analysis.stats.intervals import CONFIDENCE, quiet
from seedbench.analysis.stats.runs import DIVERGED, FINISHED, NAN, iter_groups, require_columns

# the three clocks of a run's history: the epoch, the optimizer updates made by then, cumulative seconds
MEASURES = ("epoch", "step", "seconds")
NEVER = math.inf
MIN_RUNS_FOR_CI = 2


def first_hits(
    epochs: pd.DataFrame,
    metric: str,
    threshold: float,
    *,
    run_col: str = "run_id",
    epoch_col: str = "epoch",
    step_col: str = "updates",
    seconds_col: str = "seconds",
) -> pd.DataFrame:
    """One row per run of `epochs`: whether `metric` ever reached `threshold`, and when (epoch, step, seconds).

    `epochs` has one row per run and epoch, `seconds` being each epoch's own wall time; the time of
    a hit is the sum over epochs 1..hit. A run that never reaches the threshold has reached=False
    and +inf times. Missing steps or seconds (records older than those columns) give NaN.
    """
    require_columns(epochs, [run_col, epoch_col, metric])
    frame = epochs.sort_values([run_col, epoch_col], kind="stable")
    runs = pd.unique(frame[run_col])
    value = pd.to_numeric(frame[metric], errors="coerce")
    seconds = pd.to_numeric(frame[seconds_col], errors="coerce") if seconds_col in frame.columns else pd.Series(NAN, index=frame.index)
    grouped = seconds.groupby(frame[run_col], sort=False)
    # a missing epoch time makes every later cumulative time unknown, not smaller
    unknown = seconds.isna().groupby(frame[run_col], sort=False).cummax()
    cumulative = grouped.cumsum().mask(unknown)
    steps = pd.to_numeric(frame[step_col], errors="coerce") if step_col in frame.columns else pd.Series(NAN, index=frame.index)
    hit = (value >= threshold).fillna(False).to_numpy(dtype=bool)
    first = frame.loc[hit, [run_col]].assign(
        epoch=pd.to_numeric(frame.loc[hit, epoch_col], errors="coerce").astype(float),
        step=steps[hit].astype(float),
        seconds=cumulative[hit].astype(float),
    )
    first = first.drop_duplicates(run_col, keep="first").set_index(run_col)
    out = pd.DataFrame({run_col: runs}).set_index(run_col)
    out["reached"] = out.index.isin(first.index)
    for measure in MEASURES:
        out[measure] = first[measure].reindex(out.index).where(out["reached"], NEVER)
    out["epochs_recorded"] = frame.groupby(run_col, sort=False)[epoch_col].size().reindex(out.index).to_numpy()
    out.attrs.update(metric=metric, threshold=threshold)
    return out.reset_index()


def median_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """(median, low, high, level): the sample median and its distribution-free order-statistic interval.

    +inf values (runs that never reached the target) are ordinary large values here. `level` is
    `confidence` when n allows it (n >= 6 at 95%), else the coverage of [min, max], 1 - 2 * 0.5^n;
    NaN below two values. Any NaN value (an unknown time) makes everything NaN.
    """
    x = np.asarray(values, dtype=float)
    if len(x) == 0 or np.isnan(x).any():
        return NAN, NAN, NAN, NAN
    median = float(np.median(x))
    if len(x) < MIN_RUNS_FOR_CI:
        return median, NAN, NAN, NAN
    with quiet():
        # the interval does not depend on the hypothesised quantile q; only the test's p-value would
        low, high = stats.quantile_test(x, q=0.0, p=0.5).confidence_interval(confidence)
    if math.isnan(low) or math.isnan(high):  # too few runs for `confidence`: the widest interval and its own level
        return median, float(np.min(x)), float(np.max(x)), 1.0 - 2.0 * 0.5 ** len(x)
    return median, float(low), float(high), confidence


TIME_COLUMNS = [f"{m}_{s}" for m in MEASURES for s in ("median", "ci_low", "ci_high")]


def time_to_target(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    metric: str,
    threshold: float,
    by: str,
    within: Sequence[str] = (),
    *,
    run_col: str = "run_id",
    status_col: str = "status",
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Per arm (and `within` group): runs counted, how many reached the threshold, median times with intervals.

    `runs` has one row per run (run_col, status, by, within); `epochs` one per run and epoch. Finished
    and diverged runs with a history count; failed, running and history-less runs are `n_left_out`.
    """
    within = [within] if isinstance(within, str) else list(within)
    require_columns(runs, [run_col, by, *within])
    hits = first_hits(epochs, metric, threshold, run_col=run_col)
    status = runs[status_col].astype(object) if status_col in runs.columns else pd.Series(FINISHED, index=runs.index)
    counted = status.isin([FINISHED, DIVERGED]) & runs[run_col].isin(hits[run_col])
    frame = runs[[run_col, by, *within]].assign(_counted=counted.to_numpy(), _diverged=(status == DIVERGED).to_numpy())
    frame = frame.merge(hits, on=run_col, how="left", validate="one_to_one")
    rows = []
    for key, group in iter_groups(frame, [*within, by]):
        used = group[group["_counted"]]
        reached = int(used["reached"].sum())
        row: dict[str, Any] = {
            **key,
            "n": len(used),
            "reached": reached,
            "censored": len(used) - reached,
            "fraction_reached": reached / len(used) if len(used) else NAN,
            "n_diverged": int(used["_diverged"].sum()),
            "n_left_out": len(group) - len(used),
        }
        for measure in MEASURES:
            median, low, high, level = median_ci(used[measure].to_numpy(dtype=float), confidence)
            row.update({f"{measure}_median": median, f"{measure}_ci_low": low, f"{measure}_ci_high": high})
            if measure == "epoch":  # the level depends on n only; the epoch of a hit is never unknown
                row["ci_level"] = level
        rows.append(row)
    columns = [*within, by, "n", "reached", "censored", "fraction_reached", "n_diverged", "n_left_out", *TIME_COLUMNS, "ci_level"]
    out = pd.DataFrame(rows, columns=columns)
    out.attrs.update(
        metric=metric,
        threshold=threshold,
        by=by,
        within=within,
        confidence=confidence,
        ci_method="distribution-free order-statistic interval of the median (binomial; scipy.stats.quantile_test)",
    )
    return out


def time_ratios(table: pd.DataFrame, by: str, workloads: Sequence[str], measure: str = "seconds") -> pd.DataFrame:
    """Per workload and arm: the median time, the best arm's, and their ratio (+inf: never, or not run).

    `table` is a time_to_target() frame with `within` = `workloads`. Every arm gets a row for every
    workload; an arm that did not run a workload has n = 0 and an infinite ratio there.
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown time measure {measure!r}; choose one of {', '.join(MEASURES)}")
    workloads = list(workloads)
    column = f"{measure}_median"
    require_columns(table, [*workloads, by, column])
    arms = sorted(pd.unique(table[by].astype(object)), key=str)
    rows = []
    for key, group in iter_groups(table, workloads):
        times = {arm: float(t) for arm, t in zip(group[by], group[column])}
        finite = [t for t in times.values() if math.isfinite(t)]
        best = min(finite) if finite else NEVER
        for arm in arms:
            t = times.get(arm, NEVER)
            t = NEVER if math.isnan(t) else t
            ratio = t / best if math.isfinite(t) and math.isfinite(best) and best > 0 else NEVER
            rows.append({**key, by: arm, "time": t, "best": best, "ratio": ratio, "ran": arm in times})
    out = pd.DataFrame(rows, columns=[*workloads, by, "time", "best", "ratio", "ran"])
    out.attrs.update(measure=measure, by=by, workloads=workloads)
    return out


def time_profile(ratios: pd.DataFrame, by: str, taus: Sequence[float] | None = None) -> pd.DataFrame:
    """rho_arm(tau): the fraction of workloads on which the arm's time is within tau times the best arm's.

    `ratios` is a time_ratios() frame. `taus` defaults to 1, every finite ratio (where a profile
    steps) and a last point past the largest, so the curve is exact as a step function.
    """
    require_columns(ratios, [by, "ratio"])
    finite = ratios["ratio"][np.isfinite(ratios["ratio"].to_numpy(dtype=float))]
    if taus is None:
        top = max(2.0, float(finite.max()) * 1.1) if len(finite) else 2.0
        taus = sorted({1.0, *map(float, finite), top})
    taus_arr = np.asarray(taus, dtype=float)
    rows = []
    for arm, part in ratios.groupby(by, sort=True):
        r = part["ratio"].to_numpy(dtype=float)
        fractions = (r[:, None] <= taus_arr[None, :]).mean(axis=0) if len(r) else np.zeros(len(taus_arr))
        rows += [{by: arm, "tau": t, "fraction": f} for t, f in zip(taus_arr, fractions)]
    out = pd.DataFrame(rows, columns=[by, "tau", "fraction"])
    out.attrs.update(by=by, measure=ratios.attrs.get("measure"), workloads=ratios.attrs.get("workloads"))
    return out
