"""Ranks across tasks: the Friedman test and the Nemenyi critical difference (Demsar 2006).

Per task the arms' mean scores are ranked (1 = best); scipy's ``friedmanchisquare`` tests "all
arms rank alike", and two arms differ when their average ranks differ by more than
CD = q_alpha sqrt(k(k+1)/(6N)), q_alpha the studentized range quantile (scipy's
``studentized_range``, df = inf) over sqrt 2. A rank test needs complete blocks: only tasks on
which every arm has finished runs count.
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

from seedbench.analysis.stats.aggregate import TASKS, task_scores
from seedbench.errors import ConfigError


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
