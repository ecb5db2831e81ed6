"""Across tasks (model x dataset): aggregate scores, P(A>B) and performance profiles.

One table per task answers "which method wins on CNN-MNIST"; a paper's claim is usually "method A
is better overall". Averaging per-task means and calling the bigger number the winner ignores
that each task's mean is itself uncertain. Following Agarwal et al. (2021, "Deep RL at the edge
of the statistical precipice", the rliable library):

* **IQM and mean across tasks** with *stratified* bootstrap intervals: the runs of each task are
  resampled within that task (the tasks are fixed, the seeds are the random part), and the
  statistic is recomputed over all runs of all tasks. The IQM is ``trim_mean(scores, 0.25)`` of
  the pooled runs x tasks scores, rliable's definition (stats.intervals.iqm).
* **P(A > B)**: for each task shared by both arms, the probability that a random run of A beats a
  random run of B (Mann-Whitney U / (n_a n_b), ties counting 1/2), averaged over tasks, with a
  stratified bootstrap interval (rliable's ``probability_of_improvement``).
* **Performance profiles**: the fraction of runs scoring above tau, averaged over tasks, for a
  grid of tau, with stratified bootstrap bands; a whole distribution instead of one number.

Ranks (Friedman, Nemenyi) are in stats.ranks, equivalence (TOST) in stats.equivalence. Only
finished runs with a finite metric count. Percentile intervals throughout, seeded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from seedbench.analysis.stats.intervals import CONFIDENCE, SEED, iqm
from seedbench.analysis.stats.runs import NAN, finished
from seedbench.errors import ConfigError

TASKS = ("model", "dataset")
N_BOOT = 2000

# --------------------------------------------------------------------------------------------
# scores per arm and task


def task_scores(
    df: pd.DataFrame, metric: str, by: str, tasks: Sequence[str] = TASKS, status_col: str = "status"
) -> dict[Any, dict[tuple, np.ndarray]]:
    """{arm: {task key: finite metric values of finished runs}}; tasks without runs are left out."""
    tasks = list(tasks)
    missing = [c for c in (metric, by, *tasks) if c not in df.columns]
    if missing:
        raise ConfigError(f"unknown column(s) {missing}; runs has: {', '.join(map(str, df.columns))}")
    df = finished(df, status_col)
    values = pd.to_numeric(df[metric], errors="coerce")
    df = df.assign(_value=values)[np.isfinite(values.to_numpy(dtype=float))]
    out: dict[Any, dict[tuple, np.ndarray]] = {}
    for arm in sorted(pd.unique(df[by].astype(object)), key=str):
        part = df[df[by].astype(object) == arm]
        groups = part.groupby(tasks, sort=True, dropna=False) if tasks else [((), part)]
        out[arm] = {(k if isinstance(k, tuple) else (k,)): g["_value"].to_numpy(dtype=float) for k, g in groups}
    return out


def _resample_tasks(scores: dict[tuple, np.ndarray], rng: np.random.Generator, n_boot: int) -> list[np.ndarray]:
    """Per task a (n_boot, n_task) array of runs resampled within the task."""
    return [x[rng.integers(0, len(x), (n_boot, len(x)))] for x in scores.values()]


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    lo, hi = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def aggregate_scores(
    df: pd.DataFrame,
    metric: str,
    by: str,
    tasks: Sequence[str] = TASKS,
    *,
    status_col: str = "status",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> pd.DataFrame:
    """Per arm: IQM and mean of all runs over all tasks, with stratified-bootstrap percentile CIs."""
    rows = []
    for arm, scores in task_scores(df, metric, by, tasks, status_col).items():
        pooled = np.concatenate(list(scores.values()))
        rng = np.random.default_rng(seed)
        boot = np.concatenate(_resample_tasks(scores, rng, n_boot), axis=1)
        iqm_ci, mean_ci = _interval(iqm(boot, axis=1), confidence), _interval(boot.mean(axis=1), confidence)
        rows.append(
            {
                by: arm,
                "tasks": len(scores),
                "runs": len(pooled),
                "iqm": float(iqm(pooled)),
                "iqm_ci_low": iqm_ci[0],
                "iqm_ci_high": iqm_ci[1],
                "mean": float(pooled.mean()),
                "mean_ci_low": mean_ci[0],
                "mean_ci_high": mean_ci[1],
            }
        )
    out = pd.DataFrame(rows)
    out.attrs.update(
        metric=metric,
        by=by,
        tasks=list(tasks),
        confidence=confidence,
        n_boot=n_boot,
        ci_method="stratified bootstrap (runs resampled within each task), percentile",
    )
    return out


def _prob_greater(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 along the last axes: a (..., n), b (..., m)."""
    diff = a[..., :, None] - b[..., None, :]
    return (diff > 0).mean(axis=(-2, -1)) + 0.5 * (diff == 0).mean(axis=(-2, -1))


def probability_of_improvement(
    df: pd.DataFrame,
    metric: str,
    by: str,
    tasks: Sequence[str] = TASKS,
    *,
    status_col: str = "status",
    order: Sequence[Any] | None = None,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> pd.DataFrame:
    """Every pair of arms: P(A > B) averaged over the tasks both ran, with a stratified-bootstrap CI."""
    scores = task_scores(df, metric, by, tasks, status_col)
    arms = [a for a in (order or []) if a in scores] + [a for a in scores if a not in (order or [])]
    rows = []
    for a, b in itertools.combinations(arms, 2):
        shared = [t for t in scores[a] if t in scores[b]]
        if not shared:
            rows.append({"arm_a": a, "arm_b": b, "tasks": 0, "p_a_gt_b": NAN, "ci_low": NAN, "ci_high": NAN})
            continue
        rng = np.random.default_rng(seed)
        point = np.mean([_prob_greater(scores[a][t], scores[b][t]) for t in shared])
        draws = np.zeros(n_boot)
        for t in shared:
            xa, xb = scores[a][t], scores[b][t]
            ra = xa[rng.integers(0, len(xa), (n_boot, len(xa)))]
            rb = xb[rng.integers(0, len(xb), (n_boot, len(xb)))]
            draws += _prob_greater(ra, rb)
        draws /= len(shared)
        lo, hi = _interval(draws, confidence)
        rows.append({"arm_a": a, "arm_b": b, "tasks": len(shared), "p_a_gt_b": float(point), "ci_low": lo, "ci_high": hi})
    out = pd.DataFrame(rows, columns=["arm_a", "arm_b", "tasks", "p_a_gt_b", "ci_low", "ci_high"])
    out.attrs.update(metric=metric, by=by, ci_method="stratified bootstrap, percentile")
    return out


def performance_profile(
    df: pd.DataFrame,
    metric: str,
    by: str,
    tasks: Sequence[str] = TASKS,
    taus: Sequence[float] | None = None,
    *,
    status_col: str = "status",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> pd.DataFrame:
    """Fraction of runs with score > tau (mean over tasks) per arm and tau, with stratified-bootstrap bands.

    `taus` defaults to 101 points spanning the observed scores.
    """
    scores = task_scores(df, metric, by, tasks, status_col)
    if taus is None:
        every = np.concatenate([x for s in scores.values() for x in s.values()]) if scores else np.array([0.0, 1.0])
        lo, hi = float(every.min()), float(every.max())
        pad = (hi - lo) * 0.02 or 0.01
        taus = np.linspace(lo - pad, hi + pad, 101)
    taus = np.asarray(taus, dtype=float)
    rows = []
    for arm, per_task in scores.items():
        rng = np.random.default_rng(seed)
        point = np.mean([(x[:, None] > taus[None, :]).mean(axis=0) for x in per_task.values()], axis=0)
        boot = np.mean([(r[:, :, None] > taus[None, None, :]).mean(axis=1) for r in _resample_tasks(per_task, rng, n_boot)], axis=0)
        lows, highs = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
        rows += [{by: arm, "tau": t, "fraction": p, "ci_low": lo_, "ci_high": hi_} for t, p, lo_, hi_ in zip(taus, point, lows, highs)]
    out = pd.DataFrame(rows, columns=[by, "tau", "fraction", "ci_low", "ci_high"])
    out.attrs.update(metric=metric, by=by, tasks=list(tasks), confidence=confidence)
    return out
