"""Across tasks (model x dataset): aggregate scores, P(A>B), performance profiles, ranks, equivalence.

One table per task answers "which method wins on CNN-MNIST"; a paper's claim is usually "method A
is better overall". Averaging per-task means and calling the bigger number the winner ignores
that each task's mean is itself uncertain. Following Agarwal et al. (2021, "Deep RL at the edge
of the statistical precipice", the rliable library):

* **IQM and mean across tasks** with *stratified* bootstrap intervals: the runs of each task are
  resampled within that task (the tasks are fixed, the seeds are the random part), and the
  statistic is recomputed over all runs of all tasks. The IQM is ``trim_mean(scores, 0.25)`` of
  the pooled runs x tasks scores, rliable's definition.
* **P(A > B)**: for each task shared by both arms, the probability that a random run of A beats a
  random run of B (Mann-Whitney U / (n_a n_b), ties counting 1/2), averaged over tasks, with a
  stratified bootstrap interval (rliable's ``probability_of_improvement``).
* **Performance profiles**: the fraction of runs scoring above tau, averaged over tasks, for a
  grid of tau, with stratified bootstrap bands; a whole distribution instead of one number.
* **Friedman test and Nemenyi critical difference** (Demsar 2006): per task the arms' mean
  scores are ranked (1 = best); scipy's ``friedmanchisquare`` tests "all arms rank alike", and two
  arms differ when their average ranks differ by more than CD = q_alpha sqrt(k(k+1)/(6N)),
  q_alpha the studentized range quantile (scipy's ``studentized_range``, df = inf) over sqrt 2.
* **TOST equivalence** (Schuirmann 1987): "A and B are equivalent within +-margin" is claimed when
  both one-sided Welch tests reject, i.e. the 90% interval of the difference lies inside the
  margin (statsmodels' ``ttost_ind``). A non-significant difference is *not* equivalence.

Only finished runs with a finite metric count. Percentile intervals throughout, seeded.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

from seedbench.errors import ConfigError

TASKS = ("model", "dataset")
CONFIDENCE = 0.95
N_BOOT = 2000
SEED = 0
IQM_TRIM = 0.25
FINISHED = "finished"
NAN = float("nan")


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
    if status_col in df.columns:
        df = df[df[status_col].astype(object) == FINISHED]
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


def _iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.trim_mean(x, IQM_TRIM, axis=axis)


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
        iqm_ci, mean_ci = _interval(_iqm(boot, axis=1), confidence), _interval(boot.mean(axis=1), confidence)
        rows.append(
            {
                by: arm,
                "tasks": len(scores),
                "runs": len(pooled),
                "iqm": float(_iqm(pooled)),
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


# --------------------------------------------------------------------------------------------
# ranks: Friedman + Nemenyi


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of the Nemenyi test for k arms: the studentized range quantile (df = inf) over sqrt(2)."""
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def iman_davenport(chi2: float, k: int, n_tasks: int) -> tuple[float, float]:
    """Iman & Davenport's F_F = (N-1) chi2 / (N(k-1) - chi2) and its p-value on (k-1, (k-1)(N-1)) df.

    Demsar (2006) recommends it over the chi-square p-value of Friedman's statistic, which is conservative.
    """
    denom = n_tasks * (k - 1) - chi2
    if denom <= 0:
        return math.inf, 0.0
    ff = (n_tasks - 1) * chi2 / denom
    return ff, float(stats.f.sf(ff, k - 1, (k - 1) * (n_tasks - 1)))


def critical_difference(k: int, n_tasks: int, alpha: float = 0.05) -> float:
    """Demsar's (2006) CD = q_alpha sqrt(k (k+1) / (6 N)) for k arms ranked over N tasks."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n_tasks))


@dataclass
class RankTest:
    """Friedman test over complete tasks and the Nemenyi critical difference of average ranks."""

    arms: list[Any]
    avg_ranks: dict[Any, float]
    n_tasks: int
    dropped_tasks: int
    friedman_chi2: float
    friedman_p: float
    iman_davenport_f: float
    iman_davenport_p: float
    cd: float
    alpha: float
    pairs: pd.DataFrame

    def cliques(self) -> list[list[Any]]:
        """Maximal runs of arms (sorted by rank) whose average ranks lie within CD: not shown different."""
        order = sorted(self.arms, key=lambda a: self.avg_ranks[a])
        out: list[list[Any]] = []
        for i in range(len(order)):
            j = i
            while j + 1 < len(order) and self.avg_ranks[order[j + 1]] - self.avg_ranks[order[i]] < self.cd:
                j += 1
            if j > i and not any(set(order[i : j + 1]) <= set(c) for c in out):
                out.append(order[i : j + 1])
        return out

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"arm": self.arms, "avg_rank": [self.avg_ranks[a] for a in self.arms]}).sort_values("avg_rank", ignore_index=True)


def task_means(df: pd.DataFrame, metric: str, by: str, tasks: Sequence[str] = TASKS, status_col: str = "status") -> pd.DataFrame:
    """Tasks x arms table of mean scores (NaN where an arm has no finished run on a task)."""
    scores = task_scores(df, metric, by, tasks, status_col)
    frame = pd.DataFrame({arm: {t: float(np.mean(x)) for t, x in per.items()} for arm, per in scores.items()})
    return frame.sort_index()


def friedman_nemenyi(
    df: pd.DataFrame,
    metric: str,
    by: str,
    tasks: Sequence[str] = TASKS,
    *,
    alpha: float = 0.05,
    status_col: str = "status",
    higher_is_better: bool = True,
) -> RankTest:
    """Rank the arms per task (1 = best mean), Friedman test, Nemenyi CD (Demsar 2006).

    Only tasks on which every arm has finished runs count (a rank test needs complete blocks);
    the number left out is reported. Needs >= 3 arms and >= 3 complete tasks, else ConfigError.
    """
    means = task_means(df, metric, by, tasks, status_col)
    complete = means.dropna()
    k, n = means.shape[1], len(complete)
    if k < 3 or n < 3:
        raise ConfigError(
            f"a rank test needs >= 3 arms on >= 3 tasks that every arm ran; have {k} arm(s) on {n} complete task(s) "
            f"(tasks = {', '.join(tasks)}); add arms/tasks or choose other --by/--within"
        )
    sign = -1.0 if higher_is_better else 1.0
    ranks = np.apply_along_axis(stats.rankdata, 1, sign * complete.to_numpy(dtype=float))
    avg = dict(zip(complete.columns, ranks.mean(axis=0)))
    chi2, p = stats.friedmanchisquare(*complete.to_numpy(dtype=float).T)
    ff, ff_p = iman_davenport(float(chi2), k, n)
    cd = critical_difference(k, n, alpha)
    se = math.sqrt(k * (k + 1) / (6 * n))
    rows = []
    for a, b in itertools.combinations(list(complete.columns), 2):
        q = abs(avg[a] - avg[b]) / se * math.sqrt(2)
        rows.append(
            {
                "arm_a": a,
                "arm_b": b,
                "rank_diff": avg[a] - avg[b],
                "nemenyi_p": float(stats.studentized_range.sf(q, k, np.inf)),
                "different": abs(avg[a] - avg[b]) > cd,
            }
        )
    return RankTest(list(complete.columns), avg, n, len(means) - n, float(chi2), float(p), float(ff), ff_p, cd, alpha, pd.DataFrame(rows))


# --------------------------------------------------------------------------------------------
# equivalence


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
    from seedbench.analysis.stats import adjust_pvalues, arm_order, iter_groups, select_arm, split_by_status

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
