"""What a store knows about its Slurm submissions, and what Slurm says about them now.

Every array the Slurm engine submits is recorded in the store, beside submitit's own files:
`<store>/.seedbench/slurm/<sweep id>/<submission>/array-<job id>.json` lists, per array task, the
cells it trains (label, uuid, folder). A later run of the sweep, another sweep on the same store and
`seedbench status` read these records to tell which cells are queued or running in Slurm right now,
so that a cell is never submitted twice while a job holds it, and a job that ended without finishing
its cells (cancelled, killed, or gone from the queue) is known even when no driver was watching.

The folder is hidden, so the store's scan for run folders never walks submitit's pickles and logs.
Each driver run gets its own submission folder: job ids restart at 1 on a Slurm with a fresh state,
and a reused submitit folder would hand back another job's result.

This module only reads files and runs squeue/sacct (no torch, no machinable): `status` imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedbench.record import write_json_atomic

SLURM_DIR = ".seedbench/slurm"
ARRAY_PREFIX = "array-"
# Slurm's job states (squeue %T, sacct State) by what they mean for the cells of a task
QUEUED_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED"}
RUNNING_STATES = {"RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING", "STOPPED"}
LIVE_STATES = QUEUED_STATES | RUNNING_STATES
QUERY_TIMEOUT = 30.0
SUBMIT_GRACE = 30.0  # seconds a just-submitted task may be missing from squeue


def job_name(sweep: str) -> str:
    """The name every job of a sweep carries; a job id Slurm reuses for another job has another name."""
    return f"seedbench-{sweep[:12]}"


def submission_folder(store: Path, sweep: str) -> Path:
    """A new folder for one driver run's submissions of `sweep` (submitit's folder, and the array records)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(store) / SLURM_DIR / sweep
    for n in range(1000):
        folder = base / (f"{stamp}-{os.getpid()}" + (f"-{n}" if n else ""))
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise OSError(f"cannot create a submission folder under {base}")


@dataclass
class ArrayRecord:
    """One submitted array: its job id, name, and per task the cells it trains."""

    path: Path
    array: str
    name: str
    submitted_at: float
    tasks: list[list[dict[str, str]]]  # per array task: [{"label", "uuid", "dir", "run"}] (folders relative to the store)
    jobs: list[str]  # per array task: its Slurm job id ("12_3"; "12" when the array had one task)
    settled: bool = False  # every task has ended and its cells were recorded (finished or failed)
    options: str = ""

    def write(self) -> None:
        write_json_atomic(
            self.path,
            {
                "array": self.array,
                "name": self.name,
                "submitted_at": self.submitted_at,
                "options": self.options,
                "settled": self.settled,
                "jobs": self.jobs,
                "tasks": self.tasks,
            },
        )


def write_array(folder: Path, array: str, name: str, tasks: list[list[dict[str, str]]], options: str, jobs: list[str]) -> ArrayRecord:
    record = ArrayRecord(Path(folder) / f"{ARRAY_PREFIX}{array}.json", array, name, time.time(), tasks, jobs, False, options)
    record.write()
    return record


def read_arrays(store: Path, sweep: str | None = None, settled: bool = False) -> list[ArrayRecord]:
    """Array records of one sweep (or of every sweep) in the store, oldest first; settled ones only if asked."""
    base = Path(store) / SLURM_DIR
    pattern = f"{sweep}/*/{ARRAY_PREFIX}*.json" if sweep else f"*/*/{ARRAY_PREFIX}*.json"
    out = []
    for path in base.glob(pattern):
        try:
            data = json.loads(path.read_text())
            record = ArrayRecord(
                path,
                str(data["array"]),
                str(data["name"]),
                float(data.get("submitted_at", 0.0)),
                list(data["tasks"]),
                [str(j) for j in data["jobs"]],
                bool(data.get("settled")),
                str(data.get("options", "")),
            )
            if len(record.jobs) != len(record.tasks):
                raise ValueError("jobs and tasks differ")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written or foreign: the store's folders still say what the cells are
        if record.settled and not settled:
            continue
        out.append(record)
    out.sort(key=lambda r: r.submitted_at)
    return out


@dataclass(frozen=True)
class TaskState:
    state: str  # Slurm's, e.g. PENDING, RUNNING, COMPLETED, CANCELLED
    reason: str = ""

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def queued(self) -> bool:
        return self.state in QUEUED_STATES


@dataclass
class QueueView:
    """Slurm's view of some arrays: task id -> state; `ok` is False when Slurm could not be asked."""

    ok: bool
    states: dict[str, TaskState] = field(default_factory=dict)
    error: str = ""

    def of(self, task_id: str) -> TaskState | None:
        return self.states.get(task_id)


def _base_state(text: str) -> str:
    return text.strip().split()[0].rstrip("+").upper() if text.strip() else "UNKNOWN"


def query_queue(arrays: Iterable[tuple[str, str]], timeout: float = QUERY_TIMEOUT) -> QueueView:
    """One squeue call for the tasks of the given (array id, job name) pairs, ended ones included.

    squeue keeps an ended job for MinJobAge (300 s by default); after that, or after a restart with a
    fresh state, a task is simply absent. A task whose job name differs belongs to another job that
    got the same id, and is left out.
    """
    names: dict[str, str] = {}
    for array, name in arrays:
        names[str(array)] = name
    if not names:
        return QueueView(True)
    if shutil.which("squeue") is None:
        return QueueView(False, error="squeue not found")
    command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%r|%j", f"--jobs={','.join(names)}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return QueueView(False, error=f"squeue did not answer within {timeout:g} s")
    if result.returncode != 0:
        first = (result.stderr or result.stdout or "").strip().splitlines()
        return QueueView(False, error=first[0] if first else f"squeue exit status {result.returncode}")
    view = QueueView(True)
    for line in result.stdout.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) != 4:
            continue
        task, state, reason, name = parts
        array = task.split("_", 1)[0]
        if names.get(array) != name:
            continue
        view.states[task] = TaskState(_base_state(state), reason.strip())
    return view


def final_state(task_id: str, timeout: float = QUERY_TIMEOUT) -> str | None:
    """How a task ended, from Slurm's accounting (sacct), where the cluster keeps it; None without it."""
    if shutil.which("sacct") is None:
        return None
    try:
        result = subprocess.run(
            ["sacct", "--noheader", "--parsable2", "--format=JobID,State", f"--jobs={task_id}"], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None  # e.g. "Slurm accounting storage is disabled"
    for line in result.stdout.splitlines():
        job, _, state = line.partition("|")
        if job == task_id:
            return _base_state(state)
    return None


REQUEUED_FILE = "requeued.json"  # written in a cell's folder each time its job requeues itself


def requeues(cell_dir: str | os.PathLike) -> dict[str, Any]:
    """The cell's requeue count and when the last one happened ({} if it never was requeued)."""
    try:
        data = json.loads((Path(cell_dir) / REQUEUED_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def note_requeue(cell_dir: str | os.PathLike, job_id: str | None) -> None:
    """Count a requeue of the cell in its folder (`status` shows a requeued cell waiting to restart as preempted)."""
    path = Path(cell_dir) / REQUEUED_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    count = int(data.get("count", 0)) + 1
    write_json_atomic(path, {"count": count, "at": time.time(), "job_id": job_id})
