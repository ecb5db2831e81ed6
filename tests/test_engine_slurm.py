"""The Slurm engine against a real local Slurm (cluster/slurm/up.sh): jobs are really cancelled, requeued, raced.

Cells are real sgd cells on the bundled digits, tiny (one epoch of 64 images) except where a test needs a
cell to be mid-training when it strikes. Every sweep goes through the command line, as a user runs it.
The local Slurm has 2 CPUs and MaxArraySize=4, so a grid of a few tasks already spans several arrays.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seedbench.record import CACHED_MARKER, WORKER_FILE
from seedbench.sweep.runners.slurm_background import STATE_FILE
from seedbench.sweep.runners.slurm_options import cluster_info, node_local_store_warning
from seedbench.sweep.runners.slurm_queue import REQUEUED_FILE, read_arrays
from tests.conftest import ROOT, run_cli, sweep_args

pytestmark = pytest.mark.slow

TINY = ["--epochs", "1", "--set", "limit_train=64", "--set", "val_size=32"]

# SGD that sleeps in every optimizer step: a cell of 12 epochs x 8 steps lasts at least 12 x 8 x `nap` s,
# whatever the machine's load, so a signal sent after its first epochs always finds it mid-training.
NAP = """
import time

import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method


class NapConfig(TrialConfig):
    nap: float = Field(0.05, ge=0, description="seconds slept in every optimizer step")


class NapSGD(torch.optim.SGD):
    def __init__(self, params, lr, nap):
        super().__init__(params, lr=lr)
        self.nap = nap

    def step(self, closure=None):
        time.sleep(self.nap)
        return super().step(closure)


register_method(
    Method(
        name="nap",
        config=NapConfig,
        optimizer=lambda params, lr, cfg, seed: NapSGD(params, lr, cfg.nap),
        learning_rates={"default": {"*": 0.05}},
        packable=True,
        description="SGD that sleeps in every step (the Slurm engine's tests)",
    )
)
"""


@pytest.fixture
def nap(tmp_path) -> list[str]:
    """The arguments of a 12-epoch nap cell (at least 5 s of training), its plugin written to tmp_path."""
    plugin = tmp_path / "plugin" / "nap.py"
    plugin.parent.mkdir()
    plugin.write_text(NAP)
    return ["--plugin", str(plugin), "--epochs", "12", "--set", "limit_train=256", "--set", "val_size=64"]


def slurm(store: Path, seeds: str, *extra: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return run_cli(*sweep_args(store, "--engine", "slurm", "--quiet", *extra, seeds=seeds), timeout=timeout)


def said(*texts: str) -> str:
    """What a command printed, with the terminal's line wrapping undone."""
    return " ".join(" ".join(texts).split())


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "seedbench.cli", *args], cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def records(store: Path) -> dict[Path, dict]:
    out = {}
    for path in Path(store).rglob("run.json"):
        try:
            out[path.parent] = json.loads(path.read_text())
        except ValueError:
            continue  # being written
    return out


def folder_of(store: Path, seed: int) -> Path | None:
    return next((f for f, r in records(store).items() if r.get("config", {}).get("seed") == seed), None)


def worker_of(folder: Path) -> dict:
    """The worker.json of the cell's run-record (the one folder under the cell that has one)."""
    (path,) = folder.glob(f"*/*/{WORKER_FILE}")
    return json.loads(path.read_text())


def epochs_done(folder: Path | None) -> int:
    try:
        return len((folder / "epochs.jsonl").read_text().splitlines()) if folder else 0
    except OSError:
        return 0


def wait_for(predicate, timeout: float = 120.0, every: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def job_state(job: str) -> str:
    """The job's state as slurmctld holds it (the local Slurm keeps an ended job for MinJobAge, 300 s)."""
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
    return next((word.split("=", 1)[1] for word in shown.split() if word.startswith("JobState=")), "")


def status(store: Path) -> dict:
    result = run_cli("status", "--store", str(store), "--format", "json")
    assert result.returncode == 0, result.stderr
    (sweep,) = [s for s in json.loads(result.stdout) if s["engine"] == "slurm"]
    return sweep


def assert_one_finished_record_per_cell(store: Path, seeds: set[int]) -> dict[Path, dict]:
    runs = records(store)
    assert sorted(r["config"]["seed"] for r in runs.values()) == sorted(seeds), "one record per cell, no duplicate"
    assert {r["status"] for r in runs.values()} == {"finished"}, {str(k): r.get("error") for k, r in runs.items()}
    assert all((folder / CACHED_MARKER).exists() for folder in runs)
    for folder in runs:  # one run-record per cell: a retry or a requeue continues it, never starts a second
        assert len(list(folder.glob(f"*/*/{WORKER_FILE}"))) == 1, folder
    return runs


def test_twenty_cells_run_as_arrays_within_max_array_size_and_parallelism(slurm_cluster, tmp_path):
    store = tmp_path / "store"
    result = slurm(store, "0-19", *TINY, "--slurm", "cells_per_task=4", "--slurm-array-parallelism", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "20 cells: trained 20" in said(result.stdout), result.stdout
    runs = assert_one_finished_record_per_cell(store, set(range(20)))

    arrays = read_arrays(store, settled=True)
    max_array = cluster_info().max_array_size
    assert len(arrays) == math.ceil(5 / max_array) >= 2, "5 tasks of 4 cells span arrays of at most MaxArraySize tasks"
    assert all(r.settled and len(r.tasks) <= max_array for r in arrays)
    assert sorted(len(task) for r in arrays for task in r.tasks) == [4] * 5
    # each cell ran in the array task its array record names it in
    planned = {cell["label"]: job for r in arrays for job, task in zip(r.jobs, r.tasks, strict=True) for cell in task}
    ran = {record["config"]["seed"]: worker_of(folder)["slurm_job_id"] for folder, record in runs.items()}
    assert {int(label.split("seed=")[1].split()[0]): job for label, job in planned.items()} == ran
    # %2 holds across arrays (a later array waits for the one before): never more than 2 tasks at once
    spans: dict[str, list[float]] = {}
    for folder, record in runs.items():
        job, began = worker_of(folder)["slurm_job_id"], worker_of(folder)["started_at"]
        span = spans.setdefault(job, [began, record["finished_at"]])
        span[0], span[1] = min(span[0], began), max(span[1], record["finished_at"])
    events = sorted([(a, 1) for a, _ in spans.values()] + [(b, -1) for _, b in spans.values()])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert len(spans) == 5 and peak <= 2, spans
    counts = status(store)
    assert counts["finished"] == 20 and counts["queued"] == counts["running"] == counts["failed"] == 0, counts


def test_a_cancelled_job_is_recorded_failed_and_retried_on_request(slurm_cluster, tmp_path, nap):
    store = tmp_path / "store"
    # cancelled as soon as its task starts the cell: its 12 x 8 x 0.07 s of training outlast the ~5 s a
    # cancelled job's processes live on (submitit ignores SIGTERM; SIGKILL follows KillWait and srun's wait)
    args = sweep_args(store, "--engine", "slurm", "--quiet", *nap, "--set", "nap=0.07", method="nap", seeds="0-1")
    sweep = start(*args)
    folder = wait_for(lambda: (f := folder_of(store, 0)) is not None and list(f.glob(f"*/*/{WORKER_FILE}")) and f)
    job = worker_of(folder)["slurm_job_id"]
    subprocess.run(["scancel", job], check=True, timeout=30)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 1, out + err
    assert "nap fc-digits seed=0" in said(err) and f"Slurm job {job} ended CANCELLED" in said(err), err  # named, like any failed cell
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "failed" and "CANCELLED" in record["error"]
    assert "CANCELLED" in (folder / "traceback.txt").read_text()
    assert json.loads((folder_of(store, 1) / "run.json").read_text())["status"] == "finished"
    counts = status(store)
    assert (counts["finished"], counts["failed"]) == (1, 1), counts

    skipped = run_cli(*args)  # without --retry-failed a failed cell stays failed, as on the other engines
    assert skipped.returncode == 1 and "failed earlier and skipped 1" in said(skipped.stdout), skipped.stdout
    again = run_cli(*args, "--retry-failed", timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trained 1" in said(again.stdout) and "reused 1" in said(again.stdout), again.stdout
    assert_one_finished_record_per_cell(store, {0, 1})


def test_detach_submits_and_returns_then_the_same_sweep_collects_and_submits_only_the_missing(slurm_cluster, tmp_path):
    store = tmp_path / "store"
    spec = tmp_path / "grid.yaml"  # Slurm options from the YAML, over a --set (preset-like) layer, under --slurm
    spec.write_text(f"methods: [sgd]\nmodels: [fc]\ndatasets: [digits]\nseeds: 0-1\nstore: {store}\nslurm: {{time: 30, mem: 2G}}\n")
    placement = ["--set", "slurm={time: 20, mem: 1G, partition: local}", "--slurm", "mem=1500M"]
    started = time.time()
    first = run_cli("sweep", str(spec), "--engine", "slurm", *TINY, *placement, "--detach")
    assert first.returncode == 0, first.stderr[-3000:]
    assert time.time() - started < 30 and "submitted 2 to Slurm" in said(first.stdout), first.stdout
    assert "run the same command again to collect" in said(first.stdout)
    (submitted,) = read_arrays(store, settled=True)
    assert submitted.options == "partition=local time=30 cpus=1 mem=1500M", submitted.options  # cell < YAML < --slurm
    early = status(store)
    assert early["queued"] + early["running"] + early["finished"] == 2 and early["pending"] == 0, early
    # where Slurm's clients are missing, status says so and counts from the store's records alone
    blind = run_cli("status", "--store", str(store), "--format", "json", env={"PATH": str(Path(sys.executable).parent)})
    assert blind.returncode == 0 and "could not ask Slurm (squeue not found)" in said(blind.stderr), blind.stderr
    (counts,) = json.loads(blind.stdout)
    assert counts["queued"] + counts["running"] + counts["finished"] == 2 and counts["pending"] == 0, counts

    second = run_cli("sweep", str(spec), "--seeds", "0-2", "--engine", "slurm", "--quiet", *TINY, *placement, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    arrays = read_arrays(store, settled=True)
    assert len(arrays) == 2, "the second run submitted one array: the missing cell"
    assert [c["label"] for task in arrays[-1].tasks for c in task] == ["sgd fc-digits seed=2"]
    assert "3 cells: trained" in said(second.stdout), second.stdout
    assert_one_finished_record_per_cell(store, {0, 1, 2})
    assert arrays[-1].settled  # (the first array is settled by whichever run looks at it once its tasks have ended)
    # Slurm options are placement: other options, the same cells, every one reused
    moved = run_cli("sweep", str(spec), "--seeds", "0-2", "--engine", "slurm", *TINY, "--slurm", "time=45", "--slurm", "cpus=2")
    assert moved.returncode == 0 and "reused 3" in said(moved.stdout) and len(read_arrays(store, settled=True)) == 2, moved.stdout


def test_a_large_detached_grid_returns_once_planned_and_a_background_submitter_submits_it(slurm_cluster, tmp_path):
    """More pending cells than the hand-off threshold (lowered to 3 here): the command returns after planning."""
    store = tmp_path / "store"
    args = sweep_args(store, "--engine", "slurm", *TINY, "--slurm", "cells_per_task=2", seeds="0-5")
    handed = {"SEEDBENCH_SLURM_BACKGROUND_OVER": "3"}
    first = run_cli(*args, "--detach", env=handed)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "6 to prepare and submit" in said(first.stdout) and "background submitter (pid" in said(first.stdout), first.stdout
    (state_file,) = (store / ".seedbench/slurm").glob(f"*/{STATE_FILE}")
    state = json.loads(state_file.read_text())
    assert state["cells"] == 6 and Path(state["log"]).exists()
    # the copy submits all six; `status` names it while it runs and reports what it did once it ended
    ended = wait_for(lambda: json.loads(state_file.read_text()).get("ended_at") and json.loads(state_file.read_text()), timeout=120)
    assert ended["submitted"] == 6 and ended["failed"] == 0, (ended, Path(state["log"]).read_text()[-2000:])
    arrays = read_arrays(store, settled=True)
    labels = [c["label"] for r in arrays for task in r.tasks for c in task]
    assert len(labels) == len(set(labels)) == 6, labels  # each cell submitted once
    shown = run_cli("status", "--store", str(store))
    assert shown.returncode == 0 and "background submitter" in said(shown.stdout) and "submitted 6 of 6" in said(shown.stdout), shown.stdout
    # the same command without --detach collects: nothing is submitted twice, every cell has one record
    second = run_cli(*args, "--quiet", timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(read_arrays(store, settled=True)) == len(arrays), "collecting submitted nothing new"
    assert_one_finished_record_per_cell(store, set(range(6)))
    # under the threshold a detached sweep still submits in the foreground
    small = run_cli(*sweep_args(store, "--engine", "slurm", *TINY, seeds="6-7"), "--detach", env=handed)
    assert small.returncode == 0 and "submitted 2 to Slurm" in said(small.stdout), small.stdout


def test_concurrent_sweeps_on_one_store_train_each_cell_once(slurm_cluster, tmp_path):
    store = tmp_path / "store"
    common = ("--engine", "slurm", "--quiet", *TINY, "--slurm", "cells_per_task=3")
    a, b = start(*sweep_args(store, *common, seeds="0-2")), start(*sweep_args(store, *common, seeds="1-3"))
    (_, err_a), (_, err_b) = a.communicate(timeout=300), b.communicate(timeout=300)
    assert a.returncode == 0 and b.returncode == 0, err_a[-2000:] + err_b[-2000:]
    assert_one_finished_record_per_cell(store, {0, 1, 2, 3})


def test_a_preempted_job_requeues_and_its_cells_resume_in_the_same_folders(slurm_cluster, tmp_path, nap):
    """USR2 (Slurm's preemption or time-limit signal) to a running solo cell and to a running pack of two:
    each job requeues itself; the cells resume from their last checkpoint in the same run-record and end
    with the record of an uninterrupted run."""
    store, reference = tmp_path / "store", tmp_path / "reference"
    args = ("--quiet", *nap, "--pack", "2")
    sweep = start(*sweep_args(store, "--engine", "slurm", *args, method="nap", seeds="0-2"))  # a pack of seeds 0-1, seed 2 solo
    jobs = set()
    for seeds in ((0, 1), (2,)):  # each task is signalled once its cells are two epochs in
        folders = wait_for(lambda seeds=seeds: all(epochs_done(folder_of(store, s)) >= 2 for s in seeds) and [folder_of(store, s) for s in seeds])
        (job,) = {worker_of(f)["slurm_job_id"] for f in folders}
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
        jobs.add(job)
    assert len(jobs) == 2  # the pack's task and the solo cell's
    folders = [folder_of(store, s) for s in range(3)]
    local = start(*sweep_args(reference, *args, method="nap", seeds="0-2"))  # the uninterrupted records, meanwhile
    preempted = wait_for(lambda: (s := status(store))["preempted"] and s, timeout=60, every=0.5)
    assert preempted["failed"] == 0, preempted
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err[-3000:]
    assert local.wait(timeout=300) == 0, local.stderr.read()[-2000:] if local.stderr else ""

    runs = assert_one_finished_record_per_cell(store, {0, 1, 2})
    whole = {r["config"]["seed"]: r for r in records(reference).values()}
    for folder, record in runs.items():
        assert folder in folders  # the same cell folder and (above) the same one run-record
        assert json.loads((folder / REQUEUED_FILE).read_text())["count"] == 1
        assert worker_of(folder)["slurm_restarts"] == 1
        assert record["resumed_from_epoch"] >= 2, record.get("resumed_from_epoch")
        for key in ("val_acc", "val_loss", "test_acc", "test_loss", "train_loss", "best_val_acc", "updates", "epochs_completed"):
            assert record[key] == whole[record["config"]["seed"]][key], key
    assert status(store)["finished"] == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--slurm", "partiton=local"], "--slurm: unknown key 'partiton' (did you mean partition?)"),
        (["--slurm", "partition=nowhere"], "partition=nowhere: Slurm has no such partition; partitions: local"),
        (["--slurm", "time=soon"], "--slurm: time='soon' is not valid"),
        (["--slurm", "cpus=512"], "asks for 512 CPUs per task, but partition local's largest node has"),
        (["--slurm", "constraint=a100"], "Slurm refuses"),
        (["--set", "slurm={partition: nowhere}"], "partition=nowhere: Slurm has no such partition"),
    ],
)
def test_bad_slurm_options_are_one_line_before_anything_is_written(slurm_cluster, tmp_path, extra, message):
    store = tmp_path / "store"
    result = run_cli(*sweep_args(store, "--engine", "slurm", *TINY, *extra))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in said(result.stderr) and "Traceback" not in result.stderr, result.stderr
    assert said(result.stderr).startswith("error:") and said(result.stderr).count("error:") == 1, result.stderr  # one line
    assert not store.exists()


def test_slurm_flags_need_the_slurm_engine_and_a_reachable_slurm(tmp_path):
    store = tmp_path / "store"
    for extra, message in (
        (["--detach"], "--detach needs --engine slurm"),
        (["--slurm", "time=10"], "--slurm needs --engine slurm"),
    ):
        result = run_cli(*sweep_args(store, *TINY, *extra))
        assert result.returncode == 2 and message in said(result.stderr), result.stderr
    result = run_cli(*sweep_args(store, "--engine", "slurm", *TINY), env={"SLURM_CONF": str(tmp_path / "missing.conf")})
    assert result.returncode == 2 and "missing.conf does not exist" in said(result.stderr) and "Traceback" not in result.stderr, result.stderr
    if not Path("/etc/slurm/slurm.conf").exists():  # no SLURM_CONF and no system config: the clients find no cluster
        env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
        command = [sys.executable, "-m", "seedbench.cli", *sweep_args(store, "--engine", "slurm", *TINY)]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        expected = "cannot reach Slurm" if shutil.which("sinfo") else "sinfo not found on this machine"
        assert result.returncode == 2 and expected in said(result.stderr) and "Traceback" not in result.stderr, result.stderr
    assert not store.exists()


def test_a_store_other_nodes_cannot_see_is_warned_about_on_a_multi_node_partition(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm (tmpfs) on this machine")
    warning = node_local_store_warning(shm, nodes=4, partition="gpu")
    assert warning is not None and "tmpfs" in warning and "partition gpu has 4 nodes" in warning
    assert "put --store on a filesystem every node mounts" in warning
    assert node_local_store_warning(tmp_path, nodes=3, partition="cpu") is not None  # /tmp, or a local disk
    assert node_local_store_warning(shm, nodes=1, partition="local") is None  # one node sees its own store


def test_the_ray_in_slurm_template_runs_a_sweep_and_leaves_no_ray_behind(slurm_cluster, tmp_path):
    """cluster/slurm/ray-sweep.sbatch, exactly as docs/cluster.md shows it: a Ray head in a one-node
    allocation, then `seedbench sweep --ray-address` on it; its Ray processes are gone when the job ends."""
    template = ROOT / "cluster" / "slurm" / "ray-sweep.sbatch"
    assert template.read_text() in (ROOT / "docs" / "cluster.md").read_text(), "docs/cluster.md shows the template as it is"
    store, log = tmp_path / "store", tmp_path / "ray-%j.out"
    grid = sweep_args(store, "--quiet", *TINY, seeds="0-1")[1:]  # what follows `seedbench sweep`
    command = ["sbatch", "--parsable", "--nodes=1", "--cpus-per-task=2", f"--output={log}", str(template), *grid]
    submitted = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    # polled here rather than with `sbatch --wait`, whose sleeps grow 2, 8, 32 s: a 15 s job took 42 s
    state = wait_for(lambda: (s := job_state(job)) in ENDED and s, timeout=500, every=0.5)
    output = Path(str(log).replace("%j", job)).read_text()
    assert state == "COMPLETED", state + output[-3000:]
    assert "2 cells: trained 2" in said(output) and "on the ray engine" in said(output), output[-3000:]
    assert {r["status"] for r in records(store).values()} == {"finished"} and len(records(store)) == 2
    temp = f"/tmp/ray-{job}"
    left = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if temp.encode() in (proc / "cmdline").read_bytes():
                left.append(proc.name)
        except OSError:
            continue
    assert not left, f"Ray processes of job {job} outlived it: {left}"
    assert not Path(temp).exists()
