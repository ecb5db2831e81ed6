"""Across-task statistics on fixed data: IQM (rliable's definition), stratified bootstrap, P(A>B), profiles, Demsar's CD, TOST."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from seedbench.analysis.stats.aggregate import aggregate_scores, performance_profile, probability_of_improvement
from seedbench.analysis.stats.equivalence import equivalence, tost
from seedbench.analysis.stats.ranks import critical_difference, friedman_nemenyi, iman_davenport, nemenyi_q
from seedbench.errors import ConfigError
from tests.study_store import run_command, write_study_store


def _frame(scores: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """{arm: {task: values}} as a run table with one `task` column."""
    rows = [
        {"method": arm, "task": task, "seed": i, "status": "finished", "acc": v}
        for arm, tasks in scores.items()
        for task, values in tasks.items()
        for i, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_iqm_is_the_25_percent_trimmed_mean_of_all_runs_of_all_tasks():
    """rliable: IQM = scipy.stats.trim_mean(scores, 0.25) of the runs x tasks scores; here by hand: sorted 1..7,100 -> mean(3,4,5,6)."""
    frame = _frame({"a": {"t1": [1, 2, 3, 100], "t2": [4, 5, 6, 7]}})
    [row] = aggregate_scores(frame, "acc", "method", ["task"], n_boot=200).to_dict("records")
    assert row["iqm"] == pytest.approx(4.5) and row["mean"] == pytest.approx(16.0)
    assert (row["tasks"], row["runs"]) == (2, 8)


def test_the_bootstrap_is_stratified_by_task():
    """Tasks constant within themselves: resampling runs within a task changes nothing, so the interval is a point.

    A bootstrap that resampled runs across tasks would mix 0.5s and 0.9s and give a wide interval.
    """
    frame = _frame({"a": {"t1": [0.5] * 4, "t2": [0.9] * 4}})
    [row] = aggregate_scores(frame, "acc", "method", ["task"], n_boot=500).to_dict("records")
    assert row["mean_ci_low"] == pytest.approx(0.7) and row["mean_ci_high"] == pytest.approx(0.7)


def test_probability_of_improvement_by_hand():
    """t1: A=[1,2] vs B=[0,3]: A wins 2 of 4 -> 0.5; t2: A=[5,5] vs B=[1,5]: 2 wins + 2 ties/2 of 4 -> 0.75; mean 0.625."""
    frame = _frame({"a": {"t1": [1, 2], "t2": [5, 5]}, "b": {"t1": [0, 3], "t2": [1, 5]}})
    [row] = probability_of_improvement(frame, "acc", "method", ["task"], n_boot=300).to_dict("records")
    assert row["p_a_gt_b"] == pytest.approx(0.625)
    assert row["ci_low"] <= 0.625 <= row["ci_high"]


def test_performance_profile_by_hand():
    frame = _frame({"a": {"t1": [0.1, 0.2, 0.3, 0.4], "t2": [0.5, 0.6, 0.7, 0.8]}})
    profile = performance_profile(frame, "acc", "method", ["task"], taus=[0.0, 0.25, 0.55, 0.9], n_boot=100)
    # fraction of runs above tau per task, averaged over tasks: (1+1)/2, (0.5+1)/2, (0+0.75)/2, 0
    assert list(profile["fraction"]) == pytest.approx([1.0, 0.75, 0.375, 0.0])


def test_nemenyi_q_and_critical_difference_match_demsar_2006():
    """Demsar (2006) Table 5(a), q_0.05 for k = 2..10, and the worked example: k=4, N=14 -> CD = 2.569 sqrt(20/84) = 1.25."""
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    assert [nemenyi_q(k) for k in range(2, 11)] == pytest.approx(table, abs=2e-3)
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=5e-3)


def test_iman_davenport_matches_demsar_2006():
    """Demsar's example: chi2_F = 9.28 for k=4, N=14 gives F_F = 3.69."""
    ff, p = iman_davenport(9.28, 4, 14)
    assert ff == pytest.approx(3.69, abs=0.01)
    assert p == pytest.approx(stats.f.sf(ff, 3, 39))


def test_friedman_ranks_and_statistic_on_a_hand_table():
    """4 tasks x 3 arms without ties; ranks by hand (1 = highest): a 1,1,2,1; b 2,3,1,2; c 3,2,3,3."""
    table = {"a": [0.90, 0.80, 0.70, 0.95], "b": [0.85, 0.60, 0.75, 0.90], "c": [0.80, 0.70, 0.60, 0.85]}
    frame = _frame({arm: {f"t{i}": [v] for i, v in enumerate(values)} for arm, values in table.items()})
    test = friedman_nemenyi(frame, "acc", "method", ["task"])
    assert test.avg_ranks == pytest.approx({"a": 1.25, "b": 2.0, "c": 2.75})
    k, n = 3, 4
    chi2 = 12 * n / (k * (k + 1)) * (sum(r**2 for r in test.avg_ranks.values()) - k * (k + 1) ** 2 / 4)
    assert test.friedman_chi2 == pytest.approx(chi2)
    assert test.cd == pytest.approx(critical_difference(3, 4))
    assert test.cliques() == [["a", "b", "c"]]  # rank spread 1.5 < CD = 1.66: nothing shown different


def test_rank_test_needs_three_arms_on_three_tasks():
    frame = _frame({"a": {"t1": [1], "t2": [2], "t3": [3]}, "b": {"t1": [2], "t2": [1], "t3": [2]}})
    with pytest.raises(ConfigError) as info:
        friedman_nemenyi(frame, "acc", "method", ["task"])
    assert ">= 3 arms" in str(info.value) and "\n" not in str(info.value)


def test_tost_by_hand():
    """x1 = 1..5, x2 = 2..6, margin 3: diff -1, se = 1, df = 8 (Welch = pooled here): p = max(P(T8 > 2), P(T8 < -4))."""
    result = tost(np.arange(1.0, 6.0), np.arange(2.0, 7.0), 3.0)
    assert result["tost_p"] == pytest.approx(stats.t.sf(2.0, 8))
    assert result["tost_p_lower"] == pytest.approx(stats.t.sf(2.0, 8))
    assert result["tost_p_upper"] == pytest.approx(stats.t.cdf(-4.0, 8))
    assert (result["diff_ci90_low"], result["diff_ci90_high"]) == pytest.approx((-1 - stats.t.ppf(0.95, 8), -1 + stats.t.ppf(0.95, 8)))


def test_equivalence_table_corrects_across_rows():
    frame = _frame({"a": {"t1": [1.0, 2, 3, 4, 5], "t2": [1.0, 2, 3, 4, 5]}, "b": {"t1": [2.0, 3, 4, 5, 6], "t2": [1.0, 9, 3, 4, 5]}})
    table = equivalence(frame, "acc", "method", ["task"], margin=3.0)
    p = table["tost_p"].to_numpy()
    first = int(np.argmin(p))  # Holm with two p-values: the smaller doubled, the larger at least that
    expected = np.empty(2)
    expected[first] = min(1.0, 2 * p[first])
    expected[1 - first] = min(1.0, max(p[1 - first], expected[first]))
    assert table["tost_p_adj"].to_numpy() == pytest.approx(expected)
    with pytest.raises(ConfigError):
        equivalence(frame, "acc", "method", ["task"], margin=0.0)


# -- the CLI on a real store ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_study_store(
        tmp_path_factory.mktemp("aggregate") / "store",
        methods={"sgd": 0.90, "rbd": 0.885, "nes": 0.88},
        models=("fc", "cnn"),
        datasets=("digits", "mnist"),
        init_seeds=range(3),
        data_seeds=range(2),
    )


def test_compare_equivalence_adds_tost_columns(store, capsys):
    run_command(
        [
            "compare",
            "--store",
            str(store),
            "--metric",
            "test_acc",
            "--by",
            "method",
            "--equivalence",
            "3",  # percentage points: accuracies are compared in %
            "--where",
            "model = 'fc' AND dataset = 'digits'",
            "--format",
            "json",
            "--unpaired",
        ]
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["equivalent"] == (r["tost_p_adj"] < 0.05) for r in rows)
    assert all(r["diff_ci90_low (%)"] > -3 and r["diff_ci90_high (%)"] < 3 for r in rows if r["equivalent"])
    assert any(r["equivalent"] for r in rows) and not all(r["equivalent"] for r in rows)  # the margin is read in %


def test_plot_profile_and_cd_write_images(store, tmp_path):
    for kind in ("profile", "cd"):
        out = tmp_path / f"{kind}.png"
        run_command(["plot", "--store", str(store), "--metric", "test_acc", "--by", "method", "--kind", kind, "-o", str(out)])
        image = matplotlib.image.imread(out)
        assert image.shape[0] > 100 and image[..., :3].std() > 0.05  # drawn on, not blank


def test_plot_cd_with_two_arms_is_a_one_line_error(store, tmp_path):
    with pytest.raises(ConfigError) as info:
        run_command(
            [
                "plot",
                "--store",
                str(store),
                "--metric",
                "test_acc",
                "--by",
                "method",
                "--kind",
                "cd",
                "--where",
                "method != 'nes'",
                "-o",
                str(tmp_path / "cd.png"),
            ]
        )
    assert "\n" not in str(info.value) and ">= 3 arms" in str(info.value)
    assert not (tmp_path / "cd.png").exists()
