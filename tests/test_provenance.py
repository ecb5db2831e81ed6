"""Every record names the code that made it, and a finished cell made by other code is never reused silently.

The plugin cases edit a copy of examples/signsgd.py between two real sweeps (the 10x learning-rate
edit a user tried: "reused 16" before this check). The library's own training code is edited in a
copy of the checkout (the seedbench package, components/ and machinable.yaml in a temporary folder,
run with that copy first on PYTHONPATH), so the real repository is never touched.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

FAST = ["--epochs", "1", "--set", "limit_train=64", "--set", "val_size=32", "--quiet"]
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _plugin(tmp_path: Path) -> Path:
    target = tmp_path / "my_methods" / "signsgd.py"
    target.parent.mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "signsgd.py", target)
    return target


def _sweep(plugin: Path, store: Path, seeds: str = "0-1", *extra: str) -> list[str]:
    grid = ["--method", "signsgd", "--model", "fc", "--dataset", "digits", "--seeds", seeds]
    return ["sweep", "--plugin", str(plugin), *grid, "--store", str(store), *FAST, *extra]


def _records(store: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(store.rglob("run.json"))]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` and its sha256, the disposable query cache excepted."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".seedbench-cache" not in path.parts:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _ten_times_the_lr(plugin: Path) -> None:
    text = plugin.read_text()
    assert "SignSGD(params, lr=lr," in text
    plugin.write_text(text.replace("SignSGD(params, lr=lr,", "SignSGD(params, lr=10 * lr,"))


# -- a plugin edited between two sweeps ------------------------------------------------------------------


def test_an_edited_plugin_stops_the_sweep_until_its_stale_cells_are_redone(tmp_path: Path) -> None:
    plugin, store = _plugin(tmp_path), tmp_path / "store"
    first = run_cli(*_sweep(plugin, store), cwd=plugin.parent)
    assert first.returncode == 0 and "2 cells: trained 2" in first.stdout, first.stdout + first.stderr
    before = {r["config"]["seed"]: r for r in _records(store)}
    assert "reused 2" in run_cli(*_sweep(plugin, store), cwd=plugin.parent).stdout  # unchanged code: reused

    _ten_times_the_lr(plugin)
    files = _snapshot(store)
    stopped = run_cli(*_sweep(plugin, store), cwd=plugin.parent)
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    assert "reused" not in stopped.stdout and "Traceback" not in stopped.stderr
    lines = [line for line in stopped.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stopped.stderr
    for fragment in ("signsgd (2 cells", str(plugin), "--rerun-stale", "--keep-stale"):
        assert fragment in lines[0], lines[0]
    assert _snapshot(store) == files  # nothing run, nothing written

    dry = run_cli(*_sweep(plugin, store, "0-1", "--dry-run"), cwd=plugin.parent)
    assert dry.returncode == 0, dry.stderr
    text = " ".join(dry.stdout.split())
    assert "0 new, 0 finished (reused)" in text and "2 stale, the sweep stops on them: signsgd (2 cells" in text, text
    assert str(plugin) in "".join(dry.stdout.split()) and "--rerun-stale redoes them" in text  # the console wraps long paths
    keep = " ".join(run_cli(*_sweep(plugin, store, "0-1", "--dry-run", "--keep-stale"), cwd=plugin.parent).stdout.split())
    assert "0 new, 2 finished (reused)" in keep and "2 stale, kept as reused (--keep-stale)" in keep, keep

    status = run_cli("status", "--store", str(store), "--format", "json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)
    assert row["finished"] == 2 and row["stale"] == 2  # still finished records, and stale
    assert row["stale_methods"]["signsgd"]["cells"] == 2 and str(plugin) in row["stale_methods"]["signsgd"]["reasons"][0]
    table = run_cli("status", "--store", str(store))
    assert "stale signsgd: 2 finished cells" in " ".join(table.stdout.split()), table.stdout

    redo = run_cli(*_sweep(plugin, store, "0-1", "--rerun-stale"), cwd=plugin.parent)
    assert redo.returncode == 0, redo.stdout + redo.stderr
    assert "trained 2" in redo.stdout and "reused 0" in redo.stdout and "2 stale from other code trained again" in " ".join(redo.stdout.split())
    after = {r["config"]["seed"]: r for r in _records(store)}
    for seed, record in after.items():  # each cell redone in its own folder, the old record kept beside it
        assert record["code_sha256"] != before[seed]["code_sha256"] and record["status"] == "finished"
        folder = next(p.parent for p in store.rglob("run.json") if json.loads(p.read_text()) == record)
        (old,) = folder.glob("run.superseded-*.json")
        assert json.loads(old.read_text())["code_sha256"] == before[seed]["code_sha256"]
    assert len(after) == 2 and len(list(store.rglob("run.json"))) == 2  # the store sees the new records only
    again = run_cli(*_sweep(plugin, store), cwd=plugin.parent)
    assert "reused 2" in again.stdout and "stale" not in again.stdout, again.stdout + again.stderr
    assert json.loads(run_cli("status", "--store", str(store), "--format", "json").stdout)[0]["stale"] == 0


def test_the_record_carries_every_provenance_field(tmp_path: Path) -> None:
    plugin, store = _plugin(tmp_path), tmp_path / "store"
    result = run_cli(*_sweep(plugin, store, "0"), cwd=plugin.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = _records(store)
    from seedbench import __version__

    assert record["seedbench"] == __version__
    assert HEX64.match(record["code_sha256"]) and record["code_driver_sha256"] is None  # the worker agreed with the driver
    files = {f["path"]: f["sha256"] for f in record["code_files"]}
    assert files[str(plugin.resolve())] == hashlib.sha256(plugin.read_bytes()).hexdigest()  # the plugin as it ran
    assert {"seedbench/train/loop.py", "seedbench/train/steps.py", "seedbench/train/checkpoint.py"} <= set(files)
    assert files["seedbench/train/loop.py"] == hashlib.sha256((ROOT / "seedbench/train/loop.py").read_bytes()).hexdigest()
    assert not any(path.startswith(("seedbench/analysis", "seedbench/cli", "seedbench/store")) for path in files)
    assert record["plugins"][0]["sha256"] == files[str(plugin.resolve())]
    if (ROOT / ".git").exists():  # run from a checkout: its commit and a hash of its uncommitted diff (None when clean)
        assert re.match(r"^[0-9a-f]{40}$", record["git_commit"])
        assert record["git_diff_sha256"] is None or HEX64.match(record["git_diff_sha256"])
    import numpy
    import torch

    assert (record["python"], record["torch"], record["numpy"]) == (platform.python_version(), torch.__version__, numpy.__version__)
    assert record["tensorflow"] is None  # a torch cell: TensorFlow played no part
    assert record["device"] == "cpu" and record["device_name"]
    rows = json.loads(run_cli("query", "--store", str(store), "SELECT code_sha256, git_commit, device_name FROM runs", "--format", "json").stdout)
    assert rows == [{"code_sha256": record["code_sha256"], "git_commit": record["git_commit"], "device_name": record["device_name"]}]


def test_kept_stale_cells_are_remembered_and_the_report_flags_an_arm_of_two_code_versions(tmp_path: Path) -> None:
    plugin, store = _plugin(tmp_path), tmp_path / "store"
    assert run_cli(*_sweep(plugin, store), cwd=plugin.parent).returncode == 0
    plugin.write_text(plugin.read_text() + "\n# a comment: the same science, another file\n")
    kept = run_cli(*_sweep(plugin, store, "0-3", "--keep-stale"), cwd=plugin.parent)  # seeds 2-3 new, 0-1 kept
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "trained 2" in kept.stdout and "reused 2" in kept.stdout and "2 stale from other code kept" in " ".join(kept.stdout.split())
    again = run_cli(*_sweep(plugin, store, "0-3"), cwd=plugin.parent)
    assert again.returncode == 0 and "reused 4" in again.stdout, again.stdout + again.stderr  # the choice is remembered
    (entry,) = json.loads((store / "code-versions.json").read_text())["kept"]
    assert entry["method"] == "signsgd" and entry["from"] != entry["to"]
    assert json.loads(run_cli("status", "--store", str(store), "--format", "json").stdout)[-1]["stale"] == 0

    report = run_cli("report", "--store", str(store), "--plugin", str(plugin), "--format", "json")
    assert report.returncode == 0, report.stderr
    (row,) = json.loads(report.stdout)
    assert row["method"] == "signsgd" and row["n"] == 4 and row["code versions"] == 2
    title = " ".join(run_cli("report", "--store", str(store), "--plugin", str(plugin)).stdout.split())
    assert "mixed code versions: signsgd fc digits (2)" in title, title
    html = tmp_path / "report.html"
    assert run_cli("report", "--store", str(store), "--plugin", str(plugin), "--html", str(html)).returncode == 0
    page = html.read_text()
    assert "code versions per arm and task" in page and "mixed code versions: signsgd fc digits (2)" in page


# -- the library's own training code, edited in a copy of the checkout ------------------------------------


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the parts of the checkout a sweep runs: the package, the components and the catalogue."""
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "seedbench", lib / "seedbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "components", lib / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "machinable.yaml", lib / "machinable.yaml")
    return lib


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def test_editing_the_training_code_in_a_checkout_stops_the_sweep_and_unrelated_code_does_not(tmp_path: Path, checkout: Path) -> None:
    store = tmp_path / "store"
    env = {"PYTHONPATH": str(checkout), "SEEDBENCH_CATALOG": ""}
    grid = ["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--store", str(store), *FAST]
    first = run_cli(*grid, cwd=checkout, env=env)
    assert first.returncode == 0 and "trained 1" in first.stdout, first.stdout + first.stderr
    (record,) = _records(store)
    assert str(checkout) not in json.dumps(record["code_files"])  # the copy's files, named as in any checkout
    assert record["code_sha256"] != "" and "seedbench/methods/sgd.py" in {f["path"] for f in record["code_files"]}

    for unrelated in ("analysis/report.py", "cli/main.py", "store/rows.py", "train/trial.py"):
        _edit(checkout / "seedbench" / unrelated)
    unchanged = run_cli(*grid, cwd=checkout, env=env)
    assert unchanged.returncode == 0 and "reused 1" in unchanged.stdout, unchanged.stdout + unchanged.stderr

    _edit(checkout / "seedbench" / "train" / "loop.py")
    stopped = run_cli(*grid, cwd=checkout, env=env)
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    assert "sgd (1 cell: changed since they finished: seedbench/train/loop.py)" in stopped.stderr and "--rerun-stale" in stopped.stderr
    status = json.loads(run_cli("status", "--store", str(store), "--format", "json", cwd=checkout, env=env).stdout)
    assert status[0]["stale_methods"] == {"sgd": {"cells": 1, "reasons": ["changed since they finished: seedbench/train/loop.py"]}}


def _version(name: str, root: Path, framework: str = "torch") -> str:
    from seedbench.provenance import code_version
    from seedbench.registry import get_method

    return code_version(get_method(name), framework, root=root).sha256


METHODS = ("sgd", "rbd", "fpd", "nes", "sup_walsh")


def test_a_methods_code_is_its_own_files_and_the_training_modules(checkout: Path) -> None:
    """Which edits change which method's hash, computed over a copy of the library."""
    before = {(m, fw): _version(m, checkout, fw) for m in METHODS for fw in ("torch", "tensorflow")}

    def changed() -> set[tuple[str, str]]:
        now = {key: _version(key[0], checkout, key[1]) for key in before}
        out = {key for key in before if now[key] != before[key]}
        before.update(now)
        return out

    for unrelated in ("analysis/report.py", "cli/main.py", "store/rows.py", "train/trial.py", "methods/base.py", "registry.py"):
        _edit(checkout / "seedbench" / unrelated)
    (checkout / "docs").mkdir()
    (checkout / "docs" / "store.md").write_text("edited")
    assert changed() == set()
    _edit(checkout / "seedbench" / "optim" / "nes.py")  # NES's optimizer only: not RBD's, not FPD's
    assert changed() == {("nes", "torch"), ("nes", "tensorflow")}
    _edit(checkout / "seedbench" / "optim" / "rbd.py")  # FPD subclasses RBD
    assert changed() == {(m, fw) for m in ("rbd", "fpd") for fw in ("torch", "tensorflow")}
    _edit(checkout / "seedbench" / "train" / "tf_runner.py")  # TensorFlow cells only
    assert changed() == {(m, "tensorflow") for m in METHODS}
    _edit(checkout / "seedbench" / "methods" / "sgd.py")  # Sup-Walsh trains with SGD's optimizer and config
    assert changed() == {(m, fw) for m in ("sgd", "sup_walsh") for fw in ("torch", "tensorflow")}
    _edit(checkout / "seedbench" / "train" / "loop.py")
    assert changed() == set(before)


def test_a_plugin_that_wraps_a_built_in_optimizer_sees_edits_to_it(tmp_path: Path, checkout: Path) -> None:
    from seedbench.provenance import code_version
    from seedbench.registry import get_method, load_plugin

    plugin = tmp_path / "wrapped.py"
    plugin.write_text(
        "from seedbench import Method, register_method\n"
        "from seedbench.methods.sgd import SGDConfig, sgd_optimizer\n"
        "register_method(Method(name='provenance_wrapped_sgd', config=SGDConfig,\n"
        "    optimizer=lambda params, lr, cfg, seed: sgd_optimizer(params, 10 * lr, cfg, seed),\n"
        "    learning_rates={'default': {'*': 0.01}}))\n"
    )
    load_plugin(str(plugin))
    method = get_method("provenance_wrapped_sgd")
    first = code_version(method, root=checkout)
    assert str(plugin.resolve()) in first.files and "seedbench/methods/sgd.py" in first.files
    _edit(checkout / "seedbench" / "methods" / "sgd.py")
    assert code_version(method, root=checkout).sha256 != first.sha256


def test_the_worker_records_the_code_it_ran_where_the_driver_expected_other(monkeypatch: pytest.MonkeyPatch) -> None:
    from seedbench.provenance import PROVENANCE_ENV, code_version, record_fields
    from seedbench.registry import get_method

    sgd = get_method("sgd")
    real = code_version(sgd).sha256
    monkeypatch.setenv(PROVENANCE_ENV, json.dumps({"git": {"commit": "c" * 40, "diff_sha256": None}, "code": {"sgd/torch": {"sha256": real}}}))
    agreed = record_fields(sgd, "torch", "cpu")
    assert agreed["code_sha256"] == real and agreed["code_driver_sha256"] is None and agreed["git_commit"] == "c" * 40
    monkeypatch.setenv(PROVENANCE_ENV, json.dumps({"git": None, "code": {"sgd/torch": {"sha256": "0" * 64}}}))
    differed = record_fields(sgd, "torch", "cpu")  # a node with another checkout: the record says what ran there
    assert differed["code_sha256"] == real and differed["code_driver_sha256"] == "0" * 64


def test_tensorflow_cells_record_tensorflows_version() -> None:
    """Read from its distribution (tensorflow-cpu here), without importing TensorFlow (seconds)."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed")
    # A fresh interpreter: other tests in this session may have imported TensorFlow already.
    probe = (
        "import sys; from seedbench.provenance import versions; "
        "assert versions('tensorflow')['tensorflow'] and versions('torch')['tensorflow'] is None; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_kept_versions_chain() -> None:
    from seedbench.sweep.runners.provenance import kept_versions

    kept = [
        {"method": "m", "framework": "torch", "from": "a", "to": "b"},
        {"method": "m", "framework": "torch", "from": "b", "to": "c"},
        {"method": "other", "framework": "torch", "from": "x", "to": "c"},
    ]
    assert kept_versions(kept, "m/torch", "c") == {"a", "b", "c"}
    assert kept_versions(kept, "m/torch", "b") == {"a", "b"}  # a later version never vouches for an earlier one
    assert kept_versions(kept, "m/tensorflow", "c") == {"c"}
