"""A plugin brings its own TensorFlow implementation: examples/sign_descent.py, copied outside the repository.

Through the CLI, as a user runs it: the plugin's method trains with `--set framework=tensorflow` and its
record says so, and the epoch rows carry the plugin update's own diagnostic (so it was the plugin's
TensorFlow code that trained, not a built-in). On Ray the worker is another process, which finds the
implementation under the plugin's module name (`f"{__name__}:factory"`) only if that name is the same
there. A method without a TensorFlow implementation asked for framework=tensorflow is refused on the
driver in one line, before any run folder exists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli, sweep_args

FAST = ["--epochs", "2", "--set", "limit_train=96", "--set", "val_size=48", "--quiet"]


def _copy(tmp_path: Path, example: str) -> Path:
    target = tmp_path / "my_methods" / example
    target.parent.mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples" / example, target)
    return target


def _check_tensorflow_run(store: Path) -> None:
    runs = list(store.rglob("run.json"))
    assert len(runs) == 1
    record = json.loads(runs[0].read_text())
    assert record["status"] == "finished", record.get("error")
    assert record["method"] == "sign_descent"
    assert record["framework"] == "tensorflow" and record["config"]["framework"] == "tensorflow"
    assert record["D"] == 101_770
    rows = [json.loads(line) for line in (runs[0].parent / "epochs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    # the share of weights a sign step moved: only the plugin's TensorFlow update reports it
    assert all(0.0 < r["moved"] <= 1.0 for r in rows)


def test_a_plugins_tensorflow_implementation_trains_through_the_cli(tmp_path: Path) -> None:
    plugin = _copy(tmp_path, "sign_descent.py")
    store = tmp_path / "store"
    args = sweep_args(store, "--plugin", str(plugin), *FAST, "--set", "framework=tensorflow", method="sign_descent")
    result = run_cli(*args, cwd=plugin.parent)
    assert result.returncode == 0, result.stderr
    _check_tensorflow_run(store)


def test_a_plugins_tensorflow_implementation_is_found_on_a_ray_worker(tmp_path: Path, ray_cluster) -> None:
    plugin = _copy(tmp_path, "sign_descent.py")
    store = tmp_path / "store"
    args = sweep_args(
        store, "--plugin", str(plugin), *FAST, "--set", "framework=tensorflow", "--ray-address", ray_cluster.address, method="sign_descent"
    )
    result = run_cli(*args, cwd=plugin.parent)
    assert result.returncode == 0, result.stderr
    assert "ray engine" in result.stdout
    _check_tensorflow_run(store)


def test_a_method_without_a_tensorflow_implementation_is_refused_on_the_driver(tmp_path: Path) -> None:
    plugin = _copy(tmp_path, "signsgd.py")
    store = tmp_path / "store"
    args = sweep_args(store, "--plugin", str(plugin), *FAST, "--set", "framework=tensorflow", method="signsgd")
    result = run_cli(*args, cwd=plugin.parent)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "signsgd has no tensorflow runner" in lines[0] and "drop framework=tensorflow" in lines[0]
    assert "Traceback" not in result.stderr
    assert not list(store.rglob("run.json")) and not list(store.rglob("epochs.jsonl"))
