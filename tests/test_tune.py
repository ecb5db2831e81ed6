"""`seedbench tune` end to end: equal budgets, a seeded draw, selection on validation only, disjoint seeds.

Real cells on the bundled digits, made tiny (1-2 epochs, 64 training images), through the real
command line, the Python API, the local engine and the session's Ray cluster. The module trains
about twenty cells.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seedbench.cli.main import main
from seedbench.errors import ConfigError
from seedbench.methods.space import Fixed, log_uniform, parse_range, uniform
from seedbench.sweep.tune import Tune, TuneSpec, draw_trials, plan_study, rung_schedule
from seedbench.sweep.tuned import read_study, study_path
from tests.conftest import run_cli

TINY = {"limit_train": 64, "val_size": 32}
TINY_ARGS = ["--set", "limit_train=64", "--set", "val_size=32"]
TRIALS, SEEDS = 2, [100, 101]


def records(store: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(store).rglob("run.json"))]


def tune_args(store: Path, *extra: str) -> list[str]:
    return [
        "tune",
        "--method",
        "sgd,rbd",
        "--model",
        "fc",
        "--dataset",
        "digits",
        "--trials",
        str(TRIALS),
        "--seeds",
        "100-101",
        "--epochs",
        "1",
        "--study",
        "tiny",
        "--store",
        str(store),
        *TINY_ARGS,
        "--quiet",
        *extra,
    ]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding study `tiny`: sgd and rbd, 2 trials x 2 tuning seeds x 1 epoch each, run by the CLI."""
    store = tmp_path_factory.mktemp("tune") / "store"
    result = run_cli(*tune_args(store))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tuned:tiny" in result.stdout and "wrote" in result.stdout
    return store


def test_every_method_gets_exactly_the_same_budget_of_ordinary_cells(tuned: Path, capsys: pytest.CaptureFixture) -> None:
    doc = read_study(tuned, "tiny")
    assert set(doc["methods"]) == {"sgd", "rbd"}
    assert doc["budget"]["trials"] == TRIALS and doc["budget"]["seeds"] == SEEDS and doc["budget"]["epochs"] == 1
    runs = records(tuned)
    assert len(runs) == 2 * TRIALS * len(SEEDS)  # methods x trials x seeds, nothing more
    for method, entry in doc["methods"].items():
        trials = entry["workloads"]["fc-digits"]["trials"]
        assert [t["trial"] for t in trials] == list(range(TRIALS))
        for t in trials:
            assert [int(s) for s in t["rungs"][-1]["seeds"]] == SEEDS  # every trial on every tuning seed
            mine = [r for r in runs if r["method"] == method and r["config"]["lr"] == t["values"]["lr"]]
            assert sorted(r["config"]["seed"] for r in mine) == SEEDS
            assert {r["status"] for r in mine} <= {"finished", "diverged"} and all(r["config"]["epochs"] == 1 for r in mine)
    # the same study again reuses every cell and keeps its version (--keep-stale: the working tree may change meanwhile)
    assert main(tune_args(tuned, "--keep-stale")) == 0
    assert f"reused {2 * TRIALS * len(SEEDS)}" in capsys.readouterr().out
    assert read_study(tuned, "tiny")["version"] == doc["version"]
    assert len(records(tuned)) == 2 * TRIALS * len(SEEDS)


def test_the_final_sweep_applies_the_chosen_values_and_refuses_tuning_seeds(tuned: Path, capsys: pytest.CaptureFixture) -> None:
    doc = read_study(tuned, "tiny")
    grid = ["--method", "sgd,rbd", "--model", "fc", "--dataset", "digits", "--epochs", "1", *TINY_ARGS, "--store", str(tuned), "--quiet"]
    before = len(records(tuned))
    refused = run_cli("sweep", *grid, "--seeds", "0,101", "--preset", "tuned:tiny")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr
    assert "seed 101" in lines[0] and "study tiny" in lines[0] and "100-101" in lines[0] and "--seeds" in lines[0]
    assert len(records(tuned)) == before  # nothing ran
    assert main(["sweep", *grid, "--seeds", "0", "--preset", "tuned:tiny"]) == 0, capsys.readouterr()
    final = [r for r in records(tuned) if r["config"]["seed"] == 0]
    assert len(final) == 2
    for r in final:  # the identity holds the chosen values themselves
        chosen = doc["methods"][r["method"]]["workloads"]["fc-digits"]["chosen"]
        assert {k: r["config"][k] for k in chosen} == chosen


def test_selection_reads_validation_accuracy_never_test(tuned: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(tuned, store, symlinks=True)
    doc = read_study(store, "tiny")
    winner = doc["methods"]["sgd"]["workloads"]["fc-digits"]["trial"]
    loser = 1 - winner
    loser_lr = doc["methods"]["sgd"]["workloads"]["fc-digits"]["trials"][loser]["values"]["lr"]

    def edit(field: str, value: float) -> None:
        for path in store.rglob("run.json"):
            record = json.loads(path.read_text())
            if record["method"] == "sgd" and record["config"]["lr"] == loser_lr and record["config"]["seed"] in SEEDS:
                path.write_text(json.dumps({**record, field: value}))

    study = Tune(["sgd", "rbd"], "fc", "digits", trials=TRIALS, seeds=SEEDS, epochs=1, study="tiny", overrides=TINY, store=str(store))
    edit("test_acc", 1.0)  # the loser is now the best trial on test
    result = study.run(keep_stale=True)  # the cells as they are, whatever the working tree did meanwhile
    assert result.ok and (result.trained, result.reused) == (0, 2 * TRIALS * len(SEEDS))
    assert result.doc["methods"]["sgd"]["workloads"]["fc-digits"]["trial"] == winner
    assert "test" not in json.dumps(result.doc["methods"])  # the study's file holds no test accuracy
    edit("val_acc", 0.99)  # and now on validation: selection follows
    result = study.run(keep_stale=True)
    assert result.doc["methods"]["sgd"]["workloads"]["fc-digits"]["trial"] == loser
    assert result.chosen["sgd"]["fc-digits"]["lr"] == loser_lr and result.version != doc["version"]


def test_the_draw_is_seeded_by_the_study_name_and_fills_each_space() -> None:
    space = {"lr": log_uniform(1e-3, 1.0), "momentum": uniform(0.0, 0.99), "weight_decay": Fixed(0.0)}
    first = draw_trials("lr-digits", space, 16)
    assert first == draw_trials("lr-digits", space, 16)  # same name, same trials
    assert first[:5] == draw_trials("lr-digits", space, 5)  # more trials keep the first ones
    assert first != draw_trials("lr-fmnist", space, 16)
    assert all(1e-3 <= t["lr"] <= 1.0 and 0 <= t["momentum"] <= 0.99 and t["weight_decay"] == 0.0 for t in first)
    assert len({t["lr"] for t in first}) == 16
    lrs = sorted(t["lr"] for t in first)
    assert lrs[0] < 3e-3 and lrs[-1] > 0.3  # quasirandom: the whole range is covered, in each decade
    plan = plan_study(TuneSpec("even", ["sgd", "rbd", "nes"], ["fc"], ["digits"], trials=7, seeds=[5], epochs=1))
    assert {m: len(ms.trials) for m, ms in plan.spaces.items()} == {"sgd": 7, "rbd": 7, "nes": 7}
    assert set(plan.spaces["nes"].trials[0]) == {"lr", "sigma"}  # each method its own declared space
    assert rung_schedule(5, 16, 2) == [(1, 16), (2, 8), (5, 4)]
    assert rung_schedule(4, 8, None) == [(4, 8)]


def test_a_study_yaml_overrides_a_method_space(tmp_path: Path) -> None:
    from seedbench.sweep.tune import load_tune_spec

    path = tmp_path / "tune.yaml"
    path.write_text(
        "study: y\nmethods: [sgd]\nmodels: [fc]\ndatasets: [digits]\ntrials: 4\nseeds: 100-102\nepochs: 2\n"
        "space:\n  sgd: {lr: {log_uniform: [0.01, 0.1]}, momentum: 0.9, weight_decay: {choice: [0.0, 0.0001]}}\n"
    )
    plan = plan_study(load_tune_spec(path))
    trials = plan.spaces["sgd"].trials
    assert all(0.01 <= t["lr"] <= 0.1 and t["momentum"] == 0.9 and t["weight_decay"] in (0.0, 0.0001) for t in trials)
    assert parse_range({"integer": [1, 3]}, "k").value(0.999) == 3


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"space": {"sgd": {"lr": {"log_uniform": [0, 1]}}}}, "0 < low < high"),
        ({"space": {"sgd": {"momentum": {"uniform": [0.5, 0.1]}}}}, "low < high"),
        ({"space": {"sgd": {"momentum": {"uniform": [-1, 0.5]}}}}, "momentum=-1"),
        ({"space": {"sgd": {"momentm": {"uniform": [0, 0.5]}}}}, "did you mean 'momentum'"),
        ({"space": {"sgd": {"epochs": {"integer": [1, 5]}}}}, "budget"),
        ({"space": {"sgd": {"lr": [0.01, 0.1]}}}, "ambiguous"),
        ({"space": {"rbd": {"lr": 0.1}}}, "does not tune"),
        ({"overrides": {"lr": 0.1}}, "drop one"),
        ({"methods": ["pa_rewiring"]}, "alias of sgd"),
        ({"halving": 1}, "--halving"),
        ({"trials": 0}, "--trials"),
        ({"study": "../x"}, "study name"),
        ({"presets": ["tuned:other"]}, "another study"),
    ],
)
def test_bad_studies_are_refused_before_anything_runs(change: dict, fragment: str) -> None:
    spec = TuneSpec("s", ["sgd"], ["fc"], ["digits"], trials=2, seeds=[100], epochs=1)
    for key, value in change.items():
        setattr(spec, key, value)
    with pytest.raises(ConfigError) as exc:
        plan_study(spec)
    assert fragment in str(exc.value)


def test_tune_report_and_the_html_report_show_the_study(tuned: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["tune-report", "tiny", "--store", str(tuned), "--format", "csv", "-o", str(tmp_path / "lr.png")]) == 0
    out = capsys.readouterr().out
    assert "lr: log-uniform [0.001, 1]" in out and "2 trials x 2 seeds (100-101) x 1 epochs" in out
    assert (tmp_path / "lr.png").stat().st_size > 1000
    from seedbench import Store
    from seedbench.analysis.html import build_report

    page = build_report(Store(str(tuned)).runs(), "val_acc", "arm", store_dir=tuned, n_resamples=20)
    assert "<section id='tuning'>" in page and "tuning study tiny" in page and "data:image/png;base64" in page


@pytest.mark.slow
def test_tune_then_sweep_on_ray_with_successive_halving(ray_cluster, tmp_path: Path) -> None:
    from seedbench import Sweep

    store = tmp_path / "store"
    study = Tune("sgd", "fc", "digits", trials=4, seeds=[100], epochs=2, halving=2, study="halved", overrides=TINY, store=str(store))
    result = study.run(engine="ray")
    assert result.ok, result.failed
    assert (result.trained, result.reused) == (4 + 2, 0)  # rung 1: 4 trials x 1 epoch, rung 2: the best 2 x 2 epochs
    trials = result.doc["methods"]["sgd"]["workloads"]["fc-digits"]["trials"]
    rung1 = sorted(trials, key=lambda t: (-t["rungs"][0]["val_acc"], t["trial"]))
    assert {t["trial"] for t in trials if t["epochs"] == 2} == {t["trial"] for t in rung1[:2]}  # the top half went on
    chosen = result.doc["methods"]["sgd"]["workloads"]["fc-digits"]
    assert trials[chosen["trial"]]["epochs"] == 2 and chosen["val_acc"] == max(t["val_acc"] for t in trials if t["epochs"] == 2)
    assert study_path(store, "halved").is_file()
    final = Sweep("sgd", "fc", "digits", seeds=[0], presets=[result.preset], overrides={**TINY, "epochs": 2}, store=str(store)).run(engine="ray")
    assert (final.trained, final.failed) == (1, [])
    record = next(r for r in records(store) if r["config"]["seed"] == 0)
    assert record["config"]["lr"] == chosen["chosen"]["lr"]
    with pytest.raises(ConfigError, match="seed 100 was used to tune study halved"):
        Sweep("sgd", "fc", "digits", seeds=[100], presets=[result.preset], overrides=TINY, store=str(store)).run(engine="ray")
