"""Time to target and its performance profile, checked against values worked out by hand.

The store is written here in the real format (run.json, epochs.jsonl) with histories whose first
epoch at >= 90% validation accuracy is chosen per run, so every median, interval, fraction and
profile value below can be computed on paper.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from scipy import stats

from seedbench.analysis.api import Store
from seedbench.analysis.stats.time_to_target import first_hits, median_ci, time_profile, time_ratios
from seedbench.errors import ConfigError
from tests.conftest import run_cli
from tests.study_store import run_command
from tests.test_store import make_record, write_run

NEVER = None  # a run that never reaches the target
TARGET = 90.0
# (model, method) -> seconds and updates per epoch
PACE = {("fc", "sgd"): (1.5, 10), ("fc", "rbd"): (2.0, 5), ("cnn", "sgd"): (3.0, 10), ("cnn", "rbd"): (3.0, 5)}
# (model, method) -> per seed: (status, epoch of the first val_acc >= 0.9 or NEVER, epochs in the history)
RUNS = {
    ("fc", "sgd"): [("finished", 2, 6), ("finished", 3, 6), ("finished", 3, 6), ("finished", 4, 6), ("finished", 5, 6), ("finished", NEVER, 6)],
    ("fc", "rbd"): [
        ("finished", 4, 8),
        ("diverged", 4, 5),  # reached the target, then diverged: it did reach it
        ("finished", 6, 8),
        ("finished", NEVER, 8),
        ("diverged", NEVER, 3),  # diverged before reaching it: censored, counted
        ("failed", NEVER, 2),  # crashed: no complete history, left out and counted apart
    ],
    ("cnn", "sgd"): [("finished", 1, 4), ("finished", 2, 4), ("finished", 2, 4)],
    ("cnn", "rbd"): [("finished", NEVER, 4), ("finished", NEVER, 4), ("finished", NEVER, 4)],
}


def history(first: int | None, epochs: int, seconds: float, updates: int, diverged: bool) -> list[dict]:
    """val_acc climbs below 0.9 until `first`, is exactly 0.9 there (>= counts), then above."""
    rows = []
    for epoch in range(1, epochs + 1):
        if first is None:
            acc = 0.5 + 0.03 * epoch  # tops out at 0.74 after 8 epochs
        elif epoch < first:
            acc = 0.89 - 0.05 * (first - 1 - epoch)
        else:
            acc = 0.9 if epoch == first else 0.92
        last = diverged and epoch == epochs
        rows.append(
            {
                "epoch": epoch,
                "updates": updates * epoch,
                "train_loss": "nan" if last else 0.3,
                "train_acc": acc,
                "val_loss": "nan" if last else 0.4,
                "val_acc": "nan" if last else acc,
                "seconds": seconds,
                "images_per_s": 1000.0,
            }
        )
    return rows


def write_time_store(root: Path) -> Path:
    n = 0
    for (model, method), runs in RUNS.items():
        seconds, updates = PACE[(model, method)]
        for seed, (status, first, epochs) in enumerate(runs):
            record = make_record(f"t{n}", model=model, seed=seed, status=status, acc=0.9, method=method)
            rows = history(first, epochs, seconds, updates, diverged=status == "diverged")
            write_run(root, f"{method}/{model}/s{seed}", record, rows)
            n += 1
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_time_store(tmp_path_factory.mktemp("ttt") / "store")


@pytest.fixture(scope="module")
def table(store) -> pd.DataFrame:
    return Store(store).time_to_target(TARGET).set_index(["model", "arm"])


# -- per run ---------------------------------------------------------------------------------


def test_first_hit_is_the_first_epoch_at_or_above_the_target_with_cumulative_seconds():
    epochs = pd.DataFrame(
        {
            "run": ["a"] * 4 + ["b"] * 2,
            "epoch": [3, 1, 2, 4, 1, 2],  # unsorted on purpose
            "updates": [30, 10, 20, 40, 7, 14],
            "seconds": [1.0, 2.0, 0.5, 9.0, 1.0, 1.0],
            "val_acc": [0.95, 0.5, 0.9, 0.99, 0.3, 0.4],
        }
    )
    hits = first_hits(epochs, "val_acc", 0.9, run_col="run").set_index("run")
    assert hits.loc["a"].to_dict() == {"reached": True, "epoch": 2.0, "step": 20.0, "seconds": 2.5, "epochs_recorded": 4}
    assert not hits.loc["b", "reached"] and math.isinf(hits.loc["b", "epoch"]) and math.isinf(hits.loc["b", "seconds"])
    old = first_hits(epochs.drop(columns=["updates"]).assign(seconds=[1.0, None, 0.5, 9.0, 1.0, 1.0]), "val_acc", 0.9, run_col="run")
    a = old.set_index("run").loc["a"]
    assert a["epoch"] == 2 and math.isnan(a["step"]) and math.isnan(a["seconds"])  # unknown, never a smaller time


# -- per arm: medians, intervals, censoring --------------------------------------------------


def test_medians_count_runs_that_never_reached_the_target_as_never(table):
    fc_sgd = table.loc[("fc", "sgd")]
    # first hits at epochs 2, 3, 3, 4, 5, never: median (3 + 4) / 2
    assert (fc_sgd["n"], fc_sgd["reached"], fc_sgd["censored"], fc_sgd["fraction_reached"]) == (6, 5, 1, 5 / 6)
    assert fc_sgd["epoch_median"] == 3.5
    assert fc_sgd["step_median"] == 35.0  # 10 updates per epoch
    assert fc_sgd["seconds_median"] == pytest.approx(5.25)  # 1.5 s per epoch: (4.5 + 6) / 2
    # n = 6: the 95% order-statistic interval is [x(1), x(6)] (coverage 1 - 2/64); x(6) is never
    assert (fc_sgd["epoch_ci_low"], fc_sgd["epoch_ci_high"], fc_sgd["ci_level"]) == (2.0, math.inf, 0.95)


def test_diverged_runs_count_failed_runs_are_left_out(table):
    fc_rbd = table.loc[("fc", "rbd")]
    # 4, 4 (then diverged), 6, never, never (diverged first); the failed run is not counted
    assert (fc_rbd["n"], fc_rbd["reached"], fc_rbd["censored"], fc_rbd["n_diverged"], fc_rbd["n_left_out"]) == (5, 3, 2, 2, 1)
    assert (fc_rbd["epoch_median"], fc_rbd["step_median"], fc_rbd["seconds_median"]) == (6.0, 30.0, 12.0)
    # n = 5 cannot give 95% without assumptions: [min, max], which covers the median with 1 - 2 / 2^5
    assert (fc_rbd["epoch_ci_low"], fc_rbd["epoch_ci_high"]) == (4.0, math.inf)
    assert fc_rbd["ci_level"] == pytest.approx(0.9375)


def test_an_arm_that_never_got_there_has_median_never(table):
    cnn_rbd, cnn_sgd = table.loc[("cnn", "rbd")], table.loc[("cnn", "sgd")]
    assert (cnn_rbd["reached"], cnn_rbd["fraction_reached"]) == (0, 0.0) and math.isinf(cnn_rbd["seconds_median"])
    assert (cnn_sgd["epoch_median"], cnn_sgd["seconds_median"], cnn_sgd["epoch_ci_low"], cnn_sgd["epoch_ci_high"]) == (2.0, 6.0, 1.0, 2.0)
    assert cnn_sgd["ci_level"] == 0.75  # n = 3: 1 - 2 / 8


def test_median_ci_is_scipys_order_statistic_interval():
    x = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0]
    median, low, high, level = median_ci(x)
    expected = stats.quantile_test(x, q=0, p=0.5).confidence_interval(0.95)
    assert (median, low, high, level) == (5.5, expected.low, expected.high, 0.95)
    assert (low, high) == (2.0, 9.0)  # x(2), x(9): P(2 <= B <= 8), B ~ Bin(10, 1/2) = 1 - 2 * 11/1024 >= 0.95
    assert all(math.isnan(v) for v in median_ci([1.0, math.nan, 2.0]))
    assert median_ci([4.0])[0] == 4.0 and math.isnan(median_ci([4.0])[1])


# -- across workloads: AlgoPerf-style performance profiles ------------------------------------


def test_time_ratios_and_profile_match_the_hand_computation(table):
    frame = table.reset_index()
    ratios = time_ratios(frame, "arm", ["model"], measure="seconds").set_index(["model", "arm"])
    # fc: sgd 5.25 s (best), rbd 12 s; cnn: sgd 6 s, rbd never
    assert ratios.loc[("fc", "rbd"), "ratio"] == pytest.approx(12 / 5.25)
    assert ratios.loc[("fc", "sgd"), "ratio"] == 1.0 and ratios.loc[("cnn", "sgd"), "ratio"] == 1.0
    assert math.isinf(ratios.loc[("cnn", "rbd"), "ratio"])
    profile = time_profile(ratios.reset_index(), "arm", taus=[1.0, 2.0, 12 / 5.25, 100.0]).set_index(["arm", "tau"])["fraction"]
    assert list(profile.loc["sgd"]) == [1.0, 1.0, 1.0, 1.0]
    assert list(profile.loc["rbd"]) == [0.0, 0.0, 0.5, 0.5]  # within 2.29x on fc from there on; never on cnn
    # in optimizer steps rbd is the faster one on fc (30 vs 35 updates): profiles depend on the clock
    steps = time_ratios(frame, "arm", ["model"], measure="step").set_index(["model", "arm"])
    assert steps.loc[("fc", "rbd"), "ratio"] == 1.0 and steps.loc[("fc", "sgd"), "ratio"] == pytest.approx(35 / 30)


def test_an_arm_that_did_not_run_a_workload_counts_as_never_there():
    table = pd.DataFrame({"task": ["a", "a", "b"], "arm": ["x", "y", "x"], "seconds_median": [2.0, 4.0, 3.0]})
    ratios = time_ratios(table, "arm", ["task"]).set_index(["task", "arm"])
    assert not ratios.loc[("b", "y"), "ran"] and math.isinf(ratios.loc[("b", "y"), "ratio"])
    profile = time_profile(ratios.reset_index(), "arm", taus=[1.0, 2.0]).set_index(["arm", "tau"])["fraction"]
    assert list(profile.loc["x"]) == [1.0, 1.0] and list(profile.loc["y"]) == [0.0, 0.5]


# -- the command line ---------------------------------------------------------------------------


def test_report_target_prints_medians_intervals_and_fractions(store, capsys):
    assert run_command(["report", "--store", str(store), "--target", "90", "--format", "json"]) == 0
    rows = {(r["model"], r["arm"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[("fc", "sgd")]["reached"] == "5/6 (83%)"
    assert rows[("fc", "sgd")]["epoch"] == "3.5 [2, inf]" and rows[("fc", "sgd")]["CI"] == "95%"
    assert rows[("fc", "rbd")]["seconds"] == "12 [8, inf]" and rows[("fc", "rbd")]["CI"] == "93.8%"
    assert rows[("fc", "rbd")]["notes"] == "incl. 2 diverged; 1 failed/unfinished left out"
    assert rows[("cnn", "rbd")]["epoch"] == "never" and rows[("cnn", "rbd")]["reached"] == "0/3 (0%)"
    assert run_command(["report", "--store", str(store), "--target", "90"]) == 0
    out = capsys.readouterr().out
    assert "val_acc (%) >= 90" in out and "censored" in out


def test_plot_time_profile_writes_an_image(store, tmp_path):
    out = tmp_path / "ttt.png"
    assert run_command(["plot", "--store", str(store), "--kind", "time-profile", "--target", "90", "--time", "step", "-o", str(out)]) == 0
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 100 and image[..., :3].std() > 0.05


@pytest.mark.parametrize(
    "args, message",
    [
        (["report", "--target", "120"], "between 0 and 100"),
        (["report", "--target", "-5"], "between 0 and 100"),
        (["report", "--target", "nan"], "between 0 and 100"),
        (["report", "--target", "90", "--metric", "val_loss"], "accuracy metric"),
        (["report", "--target", "90", "--metric", "test_acc"], "per-epoch history"),
        (["report", "--target", "90", "--metric", "val_acx"], "no 'val_acx'; choose one of train_acc, val_acc"),
        (["report", "--target", "90", "--study", "variance"], "one at a time"),
        (["report", "--target", "90", "--baseline", "sgd"], "--target and --baseline"),
        (["plot", "--kind", "time-profile", "-o", "x.png"], "needs --target"),
        (["plot", "--kind", "box", "--target", "90", "-o", "x.png"], "time-profile"),
    ],
)
def test_bad_targets_are_one_line_errors(store, tmp_path, args, message):
    args = [a if a != "x.png" else str(tmp_path / "x.png") for a in args]
    with pytest.raises(ConfigError) as info:
        run_command([*args, "--store", str(store)])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_target_out_of_range_exits_2_with_one_line_and_no_traceback(store):
    result = run_cli("report", "--store", str(store), "--target", "900")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "--target 900" in result.stderr and "between 0 and 100" in result.stderr
