"""The Ray engine against a real local Ray cluster: each fault is really caused, not simulated.

Cells are real sgd cells on the bundled digits, made tiny (limit_train, epochs=1) except where a test
needs a cell to be mid-training when it strikes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from seedbench.errors import ConfigError
from seedbench.sweep.grid import SweepSpec
from seedbench.sweep.runners.dispatch import CACHED_MARKER, WORKER_FILE
from seedbench.sweep.status import sweep_status
from tests.conftest import ROOT, sweep_args

pytestmark = pytest.mark.slow

TINY = {"epochs": 1, "limit_train": 64, "val_size": 32}
TINY_ARGS = ["--epochs", "1", "--set", "limit_train=64", "--set", "val_size=32"]
# a cnn cell that trains for a second or two: long enough to be struck mid-training
SLOW = {"epochs": 4, "limit_train": 1024, "val_size": 64}


def spec(store: Path, seeds, models=("fc",), dataset="digits", versions=(), **overrides) -> SweepSpec:
    return SweepSpec(
        methods=["sgd"],
        models=list(models),
        datasets=[dataset],
        seeds=list(seeds),
        presets=list(versions),
        overrides={**TINY, **overrides},
        store=str(store),
    )


def sweep(spec_, **kwargs):
    from seedbench.sweep.run import run_sweep

    return run_sweep(spec_, quiet=True, engine="ray", **kwargs)


def records(store: Path) -> dict[Path, dict]:
    return {p.parent: json.loads(p.read_text()) for p in Path(store).rglob("run.json")}


def worker_infos(store: Path) -> dict[Path, dict]:
    """Interface folder -> the worker.json of its newest run-record."""
    out = {}
    for path in sorted(Path(store).rglob(WORKER_FILE), key=lambda p: p.stat().st_mtime):
        try:
            out[path.parents[2]] = json.loads(path.read_text())
        except ValueError:
            continue  # being written
    return out


def finished_cells(store: Path) -> int:
    """Cells machinable marked done (`cached`); a run.json that says finished without it was cut off."""
    return sum(r["status"] == "finished" and (folder / CACHED_MARKER).exists() for folder, r in records(store).items())


def index_counts(store: Path) -> dict[str, int]:
    with sqlite3.connect(Path(store) / ".machinable.sqlite") as db:
        return dict(db.execute("select kind, count(*) from 'index' where hidden=0 group by kind").fetchall())


def assert_one_finished_record_per_cell(store: Path, n: int, epochs: int | None = None) -> dict[Path, dict]:
    runs = records(store)
    assert len(runs) == n, sorted(runs)
    assert {r["status"] for r in runs.values()} == {"finished"}, {str(k): r["status"] for k, r in runs.items()}
    keys = [
        (r["config"]["model"], r["config"]["dataset"], r["config"]["seed"], json.dumps(r["config"].get("resources"), sort_keys=True))
        for r in runs.values()
    ]
    assert len(set(keys)) == n  # one record per cell, no duplicate cells
    assert index_counts(store)["Interface"] == n
    for folder, record in runs.items():
        lines = (folder / "epochs.jsonl").read_text().splitlines()
        assert len(lines) == (epochs or record["config"]["epochs"])  # a retried curve starts afresh
        [json.loads(line) for line in lines]  # and none is corrupt
    return runs


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def project_indexes() -> dict[Path, float]:
    return {p: p.stat().st_mtime for pattern in ("*.sqlite*", "components/*.sqlite*") for p in ROOT.glob(pattern)}


def cli(*args: str, timeout: int = 240) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "seedbench.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(predicate, timeout: float = 60.0, every: float = 0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def test_ray_sweep_trains_on_cpu_then_reuses_and_reports_status(ray_cluster, tmp_path, capsys, monkeypatch):
    from seedbench.cli.main import main

    store = tmp_path / "store"
    before = project_indexes()
    summary = sweep(spec(store, [0, 1, 2]), resources='{"num_cpus": 2}')
    assert (summary.trained, summary.reused, summary.failed) == (3, 0, [])
    assert_one_finished_record_per_cell(store, 3)
    for info in worker_infos(store).values():
        assert info["device"] == "cpu" and info["gpu_ids"] == [] and info["node_id"]
        assert info["threads"] == 2 and info["torch_threads"] == 2  # torch threads follow num_cpus
    assert all(r["device"] == "cpu" for r in records(store).values())
    assert project_indexes() == before  # the workers created or wrote no index (only the store's, by the driver)
    again = sweep(spec(store, [0, 1, 2, 3]))
    assert (again.trained, again.reused) == (1, 3)
    capsys.readouterr()
    assert main(["status", "--store", str(store), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted((r["cells"], r["finished"], r["pending"]) for r in rows) == [(3, 3, 0), (4, 4, 0)]
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["status", "--store", str(store)]) == 0  # the same as a table
    table = [line for line in capsys.readouterr().out.splitlines() if "sgd x fc x digits" in line]
    # grid, then cells, finished, running, failed, diverged, pending
    assert sorted((re.search(r"sgd x fc x digits x \d seeds", line).group(0), line.split()[-6:]) for line in table) == [
        ("sgd x fc x digits x 3 seeds", ["3", "3", "0", "0", "0", "0"]),
        ("sgd x fc x digits x 4 seeds", ["4", "4", "0", "0", "0", "0"]),
    ]


def test_unsatisfiable_resources_are_refused_up_front(ray_cluster, tmp_path, capsys):
    from seedbench.cli.main import main

    with pytest.raises(ConfigError, match=r'requests \{"num_cpus": 1, "TPU": 1\}, which no node'):
        sweep(spec(tmp_path / "store", [0]), resources='{"TPU": 1}')
    assert not records(tmp_path / "store")
    code = main(sweep_args(tmp_path / "store", "--engine", "ray", "--resources", '{"num_cpus": 64}', "--quiet", *TINY_ARGS))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no node of the Ray cluster" in err


def test_worker_sigkilled_mid_cell_is_retried_without_duplicates(ray_cluster, tmp_path):
    store = tmp_path / "store"
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", sweep(spec(store, [0, 1], models=("cnn",), **SLOW))))
    thread.start()

    def training():  # a worker is mid-training: its record says running and an epoch is written
        for folder, info in worker_infos(store).items():
            record = (folder / "run.json").exists() and json.loads((folder / "run.json").read_text() or "{}")
            if record and record.get("status") == "running" and (folder / "epochs.jsonl").exists():
                return folder, info["pid"]
        return None

    folder, pid = wait_for(training)
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=120)
    summary = result["summary"]
    assert (summary.trained, summary.failed) == (2, [])
    assert_one_finished_record_per_cell(store, 2)
    retried = worker_infos(store)[folder]
    assert retried["pid"] != pid  # finished by another worker process
    assert list(folder.glob("*/*/resumed_at"))  # machinable continued the same run-record
    assert index_counts(store)["Execution"] == 2  # and minted no second one


FRAGILE = """
from pathlib import Path

import torch

from seedbench import Method, TrialConfig, register_method


class Config(TrialConfig):
    fail_marker: str = ""


def optimizer(params, lr, cfg, seed):
    if cfg.model == "fc" and cfg.fail_marker and Path(cfg.fail_marker).exists():
        raise RuntimeError("fragile: the marker file is there")
    return torch.optim.SGD(params, lr=lr)


register_method(Method(name="fragile", config=Config, optimizer=optimizer, learning_rates={"default": {"*": 0.05}}))
"""


def test_cell_that_raises_is_recorded_and_retried_on_request(ray_cluster, tmp_path, capsys):
    from seedbench.cli.main import main

    store, plugin, marker = tmp_path / "store", tmp_path / "fragile.py", tmp_path / "marker"
    plugin.write_text(FRAGILE)
    marker.write_text("fail")
    args = [
        "sweep",
        "--engine",
        "ray",
        "--plugin",
        str(plugin),
        "--method",
        "fragile",
        "--model",
        "fc,cnn",
        "--dataset",
        "digits",
        "--seeds",
        "0",
        "--store",
        str(store),
        "--set",
        f"fail_marker={marker}",
        "--quiet",
        *TINY_ARGS,
    ]
    assert main(args) == 1  # the fc cell raises while it runs; the cnn cell still trains
    out = capsys.readouterr()
    assert "failed 1" in out.out and "trained 1" in out.out and "failed fragile fc-digits seed=0" in out.err
    assert "Traceback" not in out.out + out.err
    failed = [f for f, r in records(store).items() if r["status"] == "failed"]
    assert len(failed) == 1 and "fragile: the marker file is there" in (failed[0] / "traceback.txt").read_text()
    assert main(args) == 1 and "--retry-failed" in capsys.readouterr().out  # skipped unless asked
    marker.unlink()
    assert main([*args, "--retry-failed"]) == 0
    assert "trained 1" in capsys.readouterr().out
    assert_one_finished_record_per_cell(store, 2)
    assert not (failed[0] / "traceback.txt").exists()


def test_driver_killed_mid_sweep_resumes(ray_cluster, tmp_path):
    store = tmp_path / "store"
    args = [
        "sweep",
        "--ray-address",
        ray_cluster.address,
        "--method",
        "sgd",
        "--model",
        "cnn",
        "--dataset",
        "digits",
        "--seeds",
        "0-3",
        "--store",
        str(store),
        "--quiet",
        "--epochs",
        "2",
        "--set",
        "limit_train=256",
        "--set",
        "val_size=32",
    ]
    first = cli(*args)
    wait_for(lambda: any(r["status"] == "finished" for r in records(store).values()) or first.poll() is not None, timeout=120)
    first.send_signal(signal.SIGKILL)
    first.wait()

    # Ray ends the dead driver's workers; wait until no cell is held and the counts hold for half a second
    def settled():
        before = sweep_status(store)
        time.sleep(0.5)
        after = sweep_status(store)
        if before and after and before[0].counts == after[0].counts and after[0].counts["running"] == 0:
            return after[0]
        return None

    status = wait_for(settled, timeout=60, every=0.5)
    finished_before = finished_cells(store)
    assert finished_before < 4, "the driver must be killed mid-sweep"
    assert status.counts == {"finished": finished_before, "running": 0, "failed": 0, "diverged": 0, "pending": 4 - finished_before}
    second = cli(*args)
    out, err = second.communicate(timeout=240)
    assert second.returncode == 0, err
    assert f"reused {finished_before}" in out and f"trained {4 - finished_before}" in out
    assert_one_finished_record_per_cell(store, 4)


def test_concurrent_overlapping_sweeps_train_each_cell_once(ray_cluster, tmp_path):
    store = tmp_path / "store"
    common = [
        "sweep",
        "--ray-address",
        ray_cluster.address,
        "--method",
        "sgd",
        "--model",
        "fc",
        "--dataset",
        "digits",
        "--store",
        str(store),
        "--quiet",
        *TINY_ARGS,
    ]
    a, b = cli(*common, "--seeds", "0-3"), cli(*common, "--seeds", "2-5")
    (out_a, err_a), (out_b, err_b) = a.communicate(timeout=240), b.communicate(timeout=240)
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    trained = [int(out.split("trained ")[1].split()[0]) for out in (out_a, out_b)]
    assert sum(trained) == 6, (out_a, out_b)  # the two shared cells were trained once, then reused
    assert_one_finished_record_per_cell(store, 6)


def test_multi_node_ipu_cells_stay_on_their_node_and_node_loss_loses_nothing(ray_cluster, tmp_path, monkeypatch):
    import ray

    from seedbench.sweep.runners import ray as ray_engine

    monkeypatch.setattr(ray_engine, "INFEASIBLE_GRACE", 1.0)
    monkeypatch.setattr(ray_engine, "FEASIBILITY_CHECK_EVERY", 0.5)
    head_id = ray.get_runtime_context().get_node_id()
    # a second node: no IPU, a GPU Ray is told about, and a TPU that only it has
    node = ray_cluster.add_node(num_cpus=1, num_gpus=1, resources={"TPU": 1})
    ray_cluster.wait_for_nodes()
    other_id = node.node_id
    store = tmp_path / "store"
    # a cell given (a quarter of) that GPU is routed to it and trains on cuda; this CPU-only torch then fails
    gpu = sweep(spec(tmp_path / "gpu", [0]), resources='{"num_gpus": 0.25}')
    [(folder, info)] = worker_infos(tmp_path / "gpu").items()
    assert info["node_id"] == other_id and info["device"] == "cuda" and info["gpu_ids"] == ["0"] and info["cuda_visible_devices"] == "0"
    record = records(tmp_path / "gpu")[folder]
    if torch_has_cuda():
        assert gpu.trained == 1 and record["device"] == "cuda"
    else:
        assert len(gpu.failed) == 1 and record["status"] == "failed" and "CUDA" in record["error"]
    plain, ipu = spec(store, range(5), models=("cnn",), **SLOW), spec(store, [0, 1], versions=["~ipu"])  # the preset asks for {"IPU": 1}
    tpu = spec(tmp_path / "tpu", [0, 1, 2], models=("cnn",), resources={"TPU": 1}, **SLOW)
    results: dict[str, object] = {}
    threads = {
        k: threading.Thread(target=lambda k=k, s=s: results.setdefault(k, sweep(s))) for k, s in (("plain", plain), ("ipu", ipu), ("tpu", tpu))
    }
    threads["plain"].start()
    threads["ipu"].start()
    seen: dict[Path, set] = {}

    def observe():
        for folder, info in worker_infos(store).items():
            seen.setdefault(folder, set()).add(info["node_id"])
        return any(
            other_id in nodes and json.loads((f / "run.json").read_text() or "{}").get("status") == "running"
            for f, nodes in seen.items()
            if (f / "run.json").exists()
        )

    wait_for(observe, timeout=120)
    threads["tpu"].start()  # queued behind the plain cell that holds the node's only CPU
    wait_for(lambda: all(c["dir"] for s in sweep_status(tmp_path / "tpu") for c in s.cells) and sweep_status(tmp_path / "tpu"), timeout=60)
    ray_cluster.remove_node(node, allow_graceful=False)  # the non-head node dies mid-cell
    for t in threads.values():
        t.join(timeout=180)
    assert results["plain"].failed == [] and results["ipu"].failed == []
    runs = assert_one_finished_record_per_cell(store, 7)
    ipu_cells = [f for f, r in runs.items() if ((r.get("placement") or {}).get("resources") or {}).get("IPU")]  # placement, not config
    assert len(ipu_cells) == 2
    for folder in ipu_cells:
        assert worker_infos(store)[folder]["node_id"] == head_id and other_id not in seen.get(folder, set())
    assert any(other_id in nodes for nodes in seen.values())  # the plain cells spread over both nodes
    assert all(info["node_id"] == head_id for info in worker_infos(store).values())  # the lost ones redone on the head
    # cells that need what only the dead node had do not wait forever: they fail, saying why
    tpu_runs = records(tmp_path / "tpu")
    assert results["tpu"].trained + len(results["tpu"].failed) == 3 and results["tpu"].failed
    for _label, error in results["tpu"].failed:
        assert 'no live node of the Ray cluster offers {"num_cpus": 1, "TPU": 1}' in error
    assert all(r["status"] in ("finished", "failed") for r in tpu_runs.values())


def test_progress_bar_counts_done_running_failed_pending_with_eta(ray_cluster, tmp_path, monkeypatch):
    """What the live bar showed at each refresh: counts that add up, cells seen running, and the end state."""
    import io

    from rich.console import Console

    import seedbench.sweep.run as sweep_module

    shown: list[dict] = []
    update = sweep_module._Progress.update

    def recording(self, done, failed, running, description=None):
        update(self, done, failed, running, description)
        shown.append(dict(self.bar.tasks[0].fields, total=self.total))

    monkeypatch.setattr(sweep_module._Progress, "update", recording)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    # three cnn cells (train), three fc cells (raise while they run), on the session's 2-CPU head node
    plugin, marker = tmp_path / "fragile.py", tmp_path / "marker"
    plugin.write_text(FRAGILE)
    marker.write_text("fail")
    grid = SweepSpec(
        methods=["fragile"],
        models=["cnn", "fc"],
        datasets=["digits"],
        seeds=[0, 1, 2],
        overrides={**SLOW, "epochs": 2, "fail_marker": str(marker)},
        store=str(tmp_path / "store"),
        plugins=[str(plugin)],
    )
    summary = sweep_module.run_sweep(grid, console=console, engine="ray")
    assert (summary.trained, len(summary.failed)) == (3, 3)
    for fields in shown:
        assert fields["done"] + fields["failed"] + fields["running"] + fields["pending"] == fields["total"] == 6
        assert fields["running"] <= 2  # never more than the node's CPUs
    assert any(f["running"] > 0 for f in shown) and any(f["pending"] > 0 for f in shown)
    assert (shown[-1]["done"], shown[-1]["failed"], shown[-1]["running"], shown[-1]["pending"]) == (3, 3, 0, 0)
    text = screen.getvalue()
    assert "done 3 running 0 failed 3 pending 0" in text and "eta" in text
