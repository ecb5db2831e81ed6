"""The command line end to end, in subprocesses, against isolated stores and a scratch project."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FMNIST_DEBIAN, run_cli, sweep_args

FAST = ["--set", "limit_train=128", "--set", "val_size=64", "--epochs", "1"]


def _assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_sweep_then_rerun_reuses_then_report(tmp_path):
    store = str(tmp_path / "store")
    first = run_cli("sweep", "--method", "sgd", "--model", "fc,cnn", "--dataset", "digits", "--seeds", "0-1", "--store", store, *FAST)
    assert first.returncode == 0, first.stderr
    assert "4 cells: trained 4" in first.stdout
    records = list(Path(store).rglob("run.json"))
    assert len(records) == 4
    second = run_cli("sweep", "--method", "sgd", "--model", "fc,cnn", "--dataset", "digits", "--seeds", "0-1", "--store", store, *FAST, "--quiet")
    assert second.returncode == 0 and "trained 0" in second.stdout and "reused 4" in second.stdout
    assert len(list(Path(store).rglob("run.json"))) == 4
    report = run_cli("report", "--store", store, "--format", "json")
    rows = json.loads(report.stdout)
    assert {(r["model"], r["n"]) for r in rows} == {("fc", 2), ("cnn", 2)}
    table = run_cli("report", "--store", store)
    assert "fc" in table.stdout and "test_acc" in table.stdout


def test_yaml_sweep_file(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"methods: [sgd]\nmodels: [fc]\ndatasets: [digits]\nseeds: 0,2\nversions: [~quick]\nstore: {tmp_path / 'st'}\noverrides: {{epochs: 1, limit_train: 64, val_size: 32}}\n"
    )
    result = run_cli("sweep", str(spec), "--quiet")
    assert result.returncode == 0, result.stderr
    runs = [json.loads(p.read_text()) for p in (tmp_path / "st").rglob("run.json")]
    assert sorted(r["config"]["seed"] for r in runs) == [0, 2]
    assert all(r["config"]["epochs"] == 1 and r["config"]["batch_size"] == 32 for r in runs)


FLAKY_METHOD = """
import torch
from seedbench import Method, TrialConfig, register_method

class Config(TrialConfig):
    explode: bool = False

class Exploding(torch.optim.SGD):
    def step(self, closure=None):
        raise RuntimeError("the optimizer exploded")

register_method(Method(name="flaky", config=Config, learning_rates={"default": {"*": 0.1}},
                       optimizer=lambda p, lr, cfg, seed: Exploding(p, lr=lr) if cfg.explode else torch.optim.SGD(p, lr=lr)))
"""


def test_failed_cell_is_named_and_sweep_goes_on(tmp_path):
    """A valid cell that raises while it runs is the only thing recorded as failed; the rest of the grid trains."""
    plugin = tmp_path / "flaky.py"
    plugin.write_text(FLAKY_METHOD)
    store = str(tmp_path / "store")
    grid = [
        "sweep",
        "--plugin",
        str(plugin),
        "--method",
        "flaky",
        "--model",
        "fc",
        "--dataset",
        "digits",
        "--seeds",
        "0-1",
        "--store",
        store,
        "--set",
        "limit_train=32",
        "--set",
        "val_size=16",
        "--epochs",
        "1",
        "--quiet",
    ]
    fine = run_cli(*grid)
    assert fine.returncode == 0, fine.stderr
    result = run_cli(*grid, "--set", "explode=true")
    assert result.returncode == 1
    assert "failed 2" in result.stdout and "the optimizer exploded" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout  # the traceback is in the cell's folder
    failed = [p.parent for p in Path(store).rglob("run.json") if json.loads(p.read_text())["status"] == "failed"]
    assert len(failed) == 2 and all("RuntimeError: the optimizer exploded" in (d / "traceback.txt").read_text() for d in failed)
    again = run_cli(*grid, "--set", "explode=true")
    assert again.returncode == 1 and "failed earlier" in again.stdout and "--retry-failed" in again.stdout


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["sweep", "--method", "sgdd", "--model", "fc", "--dataset", "digits", "--seeds", "0"], ["unknown method 'sgdd'"]),
        (["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "3-1"], ["bad seed range"]),
        (
            ["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--version", "~tabel1"],
            ["unknown preset ~tabel1", "did you mean ~table1"],
        ),
        (["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--set", "epochs=many"], ["epochs", "valid integer"]),
        (
            ["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--set", "limit_train=16", "--set", "batch_size=32"],
            ["batch_size 32 exceeds"],
        ),
        (["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--set", "bogus=1"], ["unknown config key 'bogus'"]),
        (["sweep", "--method", "sgd", "--model", "fc"], ["--dataset", "--seeds"]),
        (["sweep", "does-not-exist.yaml"], ["sweep file not found"]),
        (["report", "--store", "/nonexistent/store"], ["does not exist"]),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, fragments):
    if args[0] == "sweep" and "--store" not in args:
        args = [*args, "--store", str(tmp_path / "store")]
    _assert_one_line_error(run_cli(*args), *fragments)


def test_missing_dataset_is_refused_before_any_cell(tmp_path):
    result = run_cli(
        "sweep",
        "--method",
        "sgd",
        "--model",
        "fc",
        "--dataset",
        "mnist",
        "--seeds",
        "0",
        "--store",
        str(tmp_path / "s"),
        "--data-dir",
        str(tmp_path / "empty"),
        "--quiet",
        env={"SEEDBENCH_DATA": ""},
    )
    _assert_one_line_error(result, "mnist")
    assert not (tmp_path / "s").exists()


def test_datasets_command_reports_locations(tmp_path):
    result = run_cli("datasets", "--format", "json", "--data-dir", str(tmp_path))
    rows = {r["dataset"]: r for r in json.loads(result.stdout)}
    assert rows["digits"]["status"] == "available" and rows["cifar10"]["status"] == "missing"
    assert (rows["fmnist"]["status"] == "available") == FMNIST_DEBIAN.is_dir()


def test_every_command_has_help():
    for command in ("sweep", "report", "datasets"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage: seedbench" in result.stdout
    assert "sweep" in run_cli("--help").stdout


def test_version_flag_prints_the_program_version():
    from seedbench import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"seedbench {__version__}"


def test_preset_is_the_documented_name_and_version_still_works(tmp_path):
    base = sweep_args(tmp_path / "s", "--set", "limit_train=32", "--set", "val_size=16", "--quiet")
    first = run_cli(*base, "--preset", "quick")
    assert first.returncode == 0, first.stderr
    second = run_cli(*base, "--version", "~quick")
    assert second.returncode == 0 and "reused 1" in second.stdout
    assert "--preset" in run_cli("sweep", "--help").stdout


@pytest.mark.skipif(not FMNIST_DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_end_to_end_on_real_fashion_mnist(tmp_path):
    store = tmp_path / "store"
    result = run_cli(
        "sweep",
        "--method",
        "sgd",
        "--model",
        "fc",
        "--dataset",
        "fmnist",
        "--seeds",
        "0",
        "--store",
        str(store),
        "--version",
        "~table1",
        "--epochs",
        "1",
        "--set",
        "limit_train=10000",
        "--set",
        "augment=false",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    record = json.loads(next(store.rglob("run.json")).read_text())
    assert record["lr"] == 0.25  # the published FC-FMNIST rate, from SGD's table1
    assert record["val_acc"] > 0.70 and record["test_acc"] > 0.70
