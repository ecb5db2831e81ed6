"""The Slurm engine: a grid's pending cells run as Slurm job arrays, submitted through submitit.

The split is the Ray engine's (seedbench.sweep.runners.dispatch): the driver alone writes the
machinable index, materialising and preparing each cell; an array task receives plain path strings
(a `SlurmTask` holding the cells' job dicts, pickled by submitit), rebuilds each cell from its folders
inside `with Project(...)` and writes files only.

- Arrays. Prepared cells are grouped by their Slurm options (every task of an array shares them),
  then into array tasks of `cells_per_task` cells (sized by how long finished cells of the same group
  took, so that a task runs about TARGET_TASK_SECONDS, or given as `--slurm cells_per_task=K`), then
  into arrays of at most the cluster's MaxArraySize tasks. The first arrays go out after a few cells
  are prepared, so jobs start while the driver prepares the rest; `array_parallelism` is Slurm's %N.
- Watching. One squeue call every POLL_EVERY seconds covers every array in flight. A task's result
  is submitit's result file; a task that ended without one (cancelled, killed, out of memory, gone
  from the queue: without accounting, submitit itself would wait for it forever) has its unfinished
  cells recorded as failed, once the cell's lock shows its process is gone.
- Preemption. A `SlurmTask` is submitit-checkpointable: on USR2 (preemption, or the time limit
  coming) it counts the requeue in each unfinished cell's folder and requeues itself with the same
  cells; the restarted job trains the interrupted cell again in the same run-record folder, which
  resumes from the cell's last checkpoint. Cells the task had finished are not trained again.
- Detach and collect. Every array is recorded in the store (seedbench.sweep.runners.slurm_queue). With
  `--detach` the driver returns once everything is submitted; a later run of the same sweep, or of
  any sweep on the store, treats cells still queued or running in Slurm as in flight (it waits for
  them instead of submitting them again), records cells whose job ended without finishing them as
  failed, and reuses the finished ones.
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

from seedbench.config import DEVICE_ENV
from seedbench.errors import SeedbenchError
from seedbench.record import CACHED_MARKER
from seedbench.sweep.runners.dispatch import PreparedCell, execute_cell, outcome_of, read_record, record_failure
from seedbench.sweep.runners.locking import try_cell_lock
from seedbench.sweep.runners.slurm_options import ClusterInfo, SlurmOptions, options_for
from seedbench.sweep.runners.slurm_queue import (
    RUNNING_STATES,
    SUBMIT_GRACE,
    ArrayRecord,
    final_state,
    job_name,
    note_requeue,
    query_queue,
    read_arrays,
    submission_folder,
    write_array,
)

FIRST_BATCH = 16  # cells prepared before the first array is submitted (jobs start while the rest is prepared)
MAX_BATCH = 1024  # cells prepared per round later on; the driver polls Slurm between rounds
POLL_EVERY = 2.0  # seconds between squeue calls
RESULT_GRACE = 5.0  # seconds an ended task may take to show its result file (attribute caches of a shared filesystem)
QUEUE_PATIENCE = 600.0  # seconds the driver keeps asking an unanswering Slurm before it leaves its jobs to a later run
TARGET_TASK_SECONDS = 600.0  # an array task trains cells for about this long when their time is known
MAX_CELLS_PER_TASK = 64
JOB_COUNT_SHARE = 4  # a sweep submits at most MaxJobCount / 4 array tasks: Slurm counts every task, pending or not
REQUEUE_LIMIT = 50  # self-requeues per task (submitit counts a USR2 as a time-out in jobs under 50 minutes)

Report = Callable[[Any, dict[str, Any]], None]


# -- the job side ------------------------------------------------------------------------------------


def worker_info() -> dict[str, Any]:
    """Where this array task runs, for worker.json (and the device its cells train on)."""
    array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    gpus = os.environ.get("SLURM_STEP_GPUS") or os.environ.get("SLURM_JOB_GPUS") or ""
    gpu_ids = [g for g in gpus.split(",") if g.strip()]
    given = os.environ.get("SLURM_GPUS_ON_NODE", "")
    if not gpu_ids and given.isdigit() and int(given) > 0:  # Slurm made the GPUs it gave the only visible ones
        gpu_ids = [str(i) for i in range(int(given))]
    return {
        "slurm_job_id": f"{array}_{index}" if array and index else os.environ.get("SLURM_JOB_ID"),
        "slurm_node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "slurm_restarts": int(os.environ.get("SLURM_RESTART_COUNT") or 0),
        "gpu_ids": gpu_ids,
        "device": "cuda" if gpu_ids else "cpu",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def _in_this_job(job: dict[str, Any], worker: dict[str, Any]) -> dict[str, Any]:
    """The job dict with the device Slurm gave and torch threads = the task's CPUs."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    threads = int(cpus) if cpus.isdigit() else job.get("threads")

    def adapt(one: dict[str, Any]) -> dict[str, Any]:
        return {**one, "threads": threads, "env": {**(one.get("env") or {}), DEVICE_ENV: worker["device"]}}

    out = adapt(job)
    if "members" in job:
        out["members"] = [adapt(m) for m in job["members"]]
    return out


def _key(job: dict[str, Any]) -> str:
    return str(job.get("pack_id") or job["uuid"])


class SlurmTask(Checkpointable):
    """One array task: its cells (or packs), trained one after another; requeues itself on USR2.

    submitit pickles the instance with its state at checkpoint time, so outcomes of the cells it
    finished before the signal travel with it and those cells are not trained again.
    """

    def __init__(self, jobs: list[dict[str, Any]]):
        self.jobs = jobs
        self.outcomes: dict[str, dict[str, Any]] = {}

    def __call__(self) -> list[dict[str, Any]]:
        worker = worker_info()
        results = []
        for job in self.jobs:
            key = _key(job)
            if key not in self.outcomes:
                self.outcomes[key] = execute_cell(_in_this_job(job, worker), wait_if_busy=True, worker=worker)
            results.append(self.outcomes[key])
        return results

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit's USR2 handler before it requeues the job: note the requeue in each unfinished cell."""
        job_id = worker_info()["slurm_job_id"]
        for job in self.jobs:
            for member in job.get("members") or [job]:
                if not os.path.exists(os.path.join(member["interface_dir"], CACHED_MARKER)):
                    try:
                        note_requeue(member["interface_dir"], job_id)
                    except OSError:
                        pass  # a marker for `status` only; the requeue matters more
        return super().checkpoint(*args, **kwargs)


# -- the driver side ---------------------------------------------------------------------------------


@dataclass
class Task:
    """An array task in flight: what it trains and what Slurm last said about it."""

    task_id: str
    items: list[Any]  # PreparedCell / PreparedPack (own submissions) or PreparedCell stubs (adopted)
    record: ArrayRecord
    result: Path | None  # submitit's result file (None: a task of an earlier driver, judged from the folders)
    submitted_at: float
    state: str = "PENDING"
    ended_at: float | None = None
    reported: set[int] = field(default_factory=set)  # indexes of items already reported


def _members(item: Any) -> list[Any]:
    return list(getattr(item, "members", None) or [item])


def _cached(member: Any) -> bool:
    return (Path(member.job["interface_dir"]) / CACHED_MARKER).exists()


def _rel(path: str | os.PathLike, store: Path) -> str:
    return os.path.relpath(path, store)


class SlurmRunner:
    """Submits prepared cells as job arrays and reports each outcome once Slurm is done with it."""

    name = "slurm"

    def __init__(
        self,
        report: Report,
        store: Path,
        sweep: str,
        sweep_slurm: dict[str, Any],
        info: ClusterInfo,
        detach: bool = False,
    ):
        self.report = report
        self.store = Path(store)
        self.sweep = sweep
        self.sweep_slurm = dict(sweep_slurm)
        self.info = info
        self.detach = detach
        self.name_ = job_name(sweep)
        self.folder: Path | None = None  # this run's submission folder, made at the first submission
        self.buffer: list[Any] = []
        self.tasks: dict[str, Task] = {}
        self.executors: dict[SlurmOptions, Any] = {}
        self.last_array: dict[SlurmOptions, str] = {}
        self.options_cache: dict[tuple, SlurmOptions] = {}
        self.finished_seconds: dict[tuple, list[float]] = {}  # cell group -> seconds of finished cells
        self.pending_cells = 0  # cells this sweep will submit (known after planning)
        self.live: dict[str, tuple[ArrayRecord, int]] = {}  # cell folder (relative) -> its live task of an earlier run
        self.adopted_cells = 0  # cells of earlier runs' live tasks this run waits for
        self.already_queued = 0  # the same, when detached (not waited for)
        self.arrays: list[str] = []
        self.submitted_cells = 0
        self.submit_seconds = 0.0  # sbatch and submitit's pickles, for the summary and the benchmark
        self.open_tasks: dict[str, int] = {}  # array record -> its tasks still in flight here
        self.queue_error = ""
        self.unanswered_since: float | None = None
        self._last_poll = 0.0

    # -- before planning: what earlier submissions left ----------------------------------------------
    def reconcile(self) -> None:
        """Find cells still queued or running in Slurm (any sweep on this store), and record as failed the
        cells whose job ended without finishing them while no driver was watching."""
        records = read_arrays(self.store)
        if not records:
            return
        view = query_queue((r.array, r.name) for r in records)
        if not view.ok:
            self.queue_error = view.error
            return  # cannot tell: nothing is taken as live, nothing is judged
        latest: dict[str, tuple[ArrayRecord, int, dict[str, str]]] = {}
        for record in records:  # oldest first: a later submission of a cell wins
            for index, cells in enumerate(record.tasks):
                for cell in cells:
                    latest[cell["dir"]] = (record, index, cell)
        now = time.time()
        unsettled: set[str] = set()
        for rel, (record, index, cell) in latest.items():
            task_id = record.jobs[index]
            state = view.of(task_id)
            if state is not None and state.live:
                self.live[rel] = (record, index)
                continue
            if state is None and now - record.submitted_at < SUBMIT_GRACE:
                self.live[rel] = (record, index)  # just submitted by a driver beside this one
                continue
            ended = state.state if state is not None else (final_state(task_id) or "")
            if not self._settle_cell(self.store / rel, cell, task_id, ended, record):
                unsettled.add(str(record.path))
        unsettled.update(str(r.path) for r, _ in self.live.values())
        for record in records:  # an array none of whose cells is in flight or undecided: later runs skip it
            if str(record.path) not in unsettled and not record.settled:
                record.settled = True
                try:
                    record.write()
                except OSError:
                    pass

    def _settle_cell(self, directory: Path, cell: dict[str, str], task_id: str, ended: str, record: ArrayRecord) -> bool:
        """Record a cell whose task ended as failed unless it finished or failed on its own; False while its lock is held."""
        if (directory / CACHED_MARKER).exists() or not directory.is_dir():
            return True
        if read_record(directory).get("status") == "failed":
            return True
        lock = try_cell_lock(self.store, cell["uuid"])
        if lock is None:
            return False  # a process still trains it (the killed job's, on its way out, or another sweep's)
        try:
            if (directory / CACHED_MARKER).exists():
                return True
            how = f"ended {ended}" if ended else "vanished from Slurm's queue"
            log = Path(record.path).parent / f"{task_id}_0_log.err"
            error = f"SlurmJobLost: Slurm job {task_id} {how} without finishing the cell"
            record_failure(directory, error, f"{error}\nthe job's log: {log}\n", None)
        finally:
            lock.release()
        return True

    def planned(self, planned: Any) -> bool:
        """Called for every cell as the sweep plans it; True when an earlier submission's job holds it."""
        if planned.state == "finished":
            times = self.finished_seconds.setdefault(planned.cell.group, [])
            if len(times) < 16 and planned.path is not None:
                seconds = read_record(planned.path).get("seconds")
                if isinstance(seconds, int | float) and seconds > 0:
                    times.append(float(seconds))
            return False
        if planned.path is not None:
            hold = self.live.get(_rel(planned.path, self.store))
            if hold is not None:
                if self.detach:
                    self.already_queued += 1
                else:
                    self._adopt(planned, *hold)
                return True
        self.pending_cells += 1
        return False

    def _adopt(self, planned: Any, record: ArrayRecord, index: int) -> None:
        from seedbench.sweep.runners.resources import Request

        task_id = record.jobs[index]
        cell = next(c for c in record.tasks[index] if c["dir"] == _rel(planned.path, self.store))
        stub = PreparedCell(
            planned.cell,
            Request(),
            {
                "label": planned.cell.label,
                "uuid": cell["uuid"],
                "interface_dir": str(self.store / cell["dir"]),
                "run_dir": str(self.store / cell["run"]),
            },
        )
        task = self.tasks.get(task_id)
        if task is None:
            task = self.tasks[task_id] = Task(task_id, [], record, None, record.submitted_at)
            self.open_tasks[str(record.path)] = self.open_tasks.get(str(record.path), 0) + 1
        task.items.append(stub)
        self.adopted_cells += 1

    def handed_off(self, submitter: dict[str, Any]) -> dict[str, Any]:
        """The sweep summary's Slurm part when a background copy prepares and submits the pending cells."""
        return {
            "arrays": [],
            "submitted": 0,
            "adopted": self.adopted_cells,
            "already_queued": self.already_queued,
            "detached": True,
            "folder": None,
            "submit_seconds": 0.0,
            "background": submitter,
        }

    # -- the runner protocol shared with LocalRunner and RayRunner ---------------------------------------
    def submit(self, cell: Any) -> None:
        self.buffer.append(cell)

    def counts(self) -> dict[str, int]:
        running = sum(1 for t in self.tasks.values() if t.state in RUNNING_STATES)
        return {"running": running, "queued": len(self.tasks) - running + len(self.buffer)}

    def run_to_end(self, tick: Callable[..., None], refill: Callable[[int], bool]) -> None:
        """Prepare and submit every pending cell in growing rounds; unless detached, wait for every task."""
        more, batch = True, FIRST_BATCH
        while True:
            if more:
                more = refill(batch)
                batch = min(batch * 4, MAX_BATCH)
                self.flush(final=not more)
            if not more and (self.detach or not self.tasks):
                break
            if time.time() - self._last_poll >= POLL_EVERY:
                if not self.detach:
                    self.poll()
                tick()
                self._last_poll = time.time()
            elif not more:
                time.sleep(min(0.5, POLL_EVERY))
        tick()

    def close(self) -> None:
        """Jobs are left to Slurm: a driver stopped early is not the end of its cells (rerun the sweep to collect)."""
        return None

    # -- submitting ------------------------------------------------------------------------------------
    def options_of(self, item: Any) -> SlurmOptions:
        import json

        from seedbench.config import PLACEMENT_ENV

        first = _members(item)[0]
        cell_slurm = json.loads(first.job.get("env", {}).get(PLACEMENT_ENV) or "{}").get("slurm") or {}
        key = (first.request, json.dumps(cell_slurm, sort_keys=True))
        if key not in self.options_cache:
            from seedbench.sweep.runners.slurm_options import check_slurm_mapping

            self.options_cache[key] = options_for(first.request, check_slurm_mapping(cell_slurm, "slurm"), self.sweep_slurm)
        return self.options_cache[key]

    def cells_per_task(self, options: SlurmOptions, items: list[Any]) -> int:
        """K cells per array task: given, or enough for TARGET_TASK_SECONDS of the group's known cell time,
        within the time limit, and never so many that fewer tasks than the cluster's free slots remain.

        Whatever the cells' time, a grid never becomes more than MaxJobCount / JOB_COUNT_SHARE tasks:
        Slurm refuses submissions beyond MaxJobCount (10,000 by default), counting every task of a pending
        array. A task that outlasts its time limit requeues itself with the cells it has not finished.
        """
        if options.cells_per_task:
            return options.cells_per_task
        least = math.ceil(max(self.pending_cells, len(items)) / max(1, self.info.max_job_count // JOB_COUNT_SHARE))
        known = [statistics.median(self.finished_seconds[g]) for g in {i.cell.group for i in items} if self.finished_seconds.get(g)]
        if not known:
            return max(1, least)
        expected = max(known)
        k = min(MAX_CELLS_PER_TASK, max(1, int(TARGET_TASK_SECONDS // expected)))
        k = min(k, max(1, int(self.info.time_for(options) * 60 // (1.5 * expected))))
        part = self.info.partition(options.partition)
        slots = max(1, (part.nodes * part.cpus) // max(1, options.cpus)) if part is not None and part.cpus else 1
        if options.array_parallelism:
            slots = min(slots, options.array_parallelism)
        return max(1, least, min(k, math.ceil(max(self.pending_cells, len(items)) / slots)))

    def flush(self, final: bool = False) -> None:
        """Submit the buffered cells as arrays, per option set; a partial task waits for more cells unless final."""
        groups: dict[SlurmOptions, list[Any]] = {}
        for item in self.buffer:
            groups.setdefault(self.options_of(item), []).append(item)
        self.buffer = []
        for options, items in groups.items():
            k = self.cells_per_task(options, items)
            cut = len(items) if final else len(items) - len(items) % k
            self.buffer.extend(items[cut:])
            tasks = [items[i : i + k] for i in range(0, cut, k)]
            size = max(1, self.info.max_array_size)
            for start in range(0, len(tasks), size):
                self._submit_array(options, tasks[start : start + size])

    def _executor(self, options: SlurmOptions) -> Any:
        if options not in self.executors:
            import submitit

            if self.folder is None:
                self.folder = submission_folder(self.store, self.sweep)
            executor = submitit.SlurmExecutor(folder=self.folder, max_num_timeout=REQUEUE_LIMIT)
            executor.update_parameters(
                job_name=self.name_, additional_parameters={"requeue": True}, **options.submitit_parameters(self.info.time_for(options))
            )
            self.executors[options] = executor
        return self.executors[options]

    def _submit_array(self, options: SlurmOptions, tasks: list[list[Any]]) -> None:
        if not tasks:
            return
        started = time.time()
        executor = self._executor(options)
        previous = self.last_array.get(options)
        if options.array_parallelism and previous:  # %N holds per array: a later array waits, so N holds for the sweep
            executor.update_parameters(dependency=f"afterany:{previous}")
        try:
            jobs = executor.submit_array([SlurmTask([item.job for item in task]) for task in tasks])
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal (a limit, a dead controller) in one line
            text = str(exc).strip().splitlines()
            reason = next((line for line in text if "error" in line.lower()), text[-1] if text else type(exc).__name__)
            raise SeedbenchError(
                f"Slurm refused an array of {len(tasks)} tasks ({reason.strip()}); {self.submitted_cells} cells were submitted "
                "before it and run on: fix the cause and run the same command again to submit the rest"
            ) from None
        job_ids = [str(job.job_id) for job in jobs]
        array = job_ids[0].split("_", 1)[0]
        rows = [
            [
                {"label": m.label, "uuid": m.job["uuid"], "dir": _rel(m.job["interface_dir"], self.store), "run": _rel(m.job["run_dir"], self.store)}
                for item in task
                for m in _members(item)
            ]
            for task in tasks
        ]
        assert self.folder is not None
        record = write_array(self.folder, array, self.name_, rows, options.describe(), job_ids)
        for job, task in zip(jobs, tasks, strict=True):
            self.tasks[str(job.job_id)] = Task(str(job.job_id), list(task), record, job.paths.result_pickle, record.submitted_at)
        self.open_tasks[str(record.path)] = len(tasks)
        self.arrays.append(array)
        self.last_array[options] = array
        self.submitted_cells += sum(len(_members(item)) for task in tasks for item in task)
        self.submit_seconds += time.time() - started

    # -- watching ------------------------------------------------------------------------------------
    def poll(self) -> None:
        """One squeue for every array in flight; report the tasks Slurm is done with."""
        if not self.tasks:
            return
        view = query_queue({(t.record.array, t.record.name) for t in self.tasks.values()})
        now = time.time()
        if not view.ok:
            self.queue_error = view.error
            self.unanswered_since = self.unanswered_since or now
            if now - self.unanswered_since > QUEUE_PATIENCE:
                raise SeedbenchError(
                    f"Slurm has not answered for {QUEUE_PATIENCE / 60:.0f} minutes ({view.error}); the {len(self.tasks)} tasks in flight "
                    "are left to Slurm: run the same command again to collect them"
                )
            return  # asked again next round
        self.unanswered_since = None
        for task_id, task in list(self.tasks.items()):
            state = view.of(task_id)
            if state is not None:
                task.state = state.state
            elif now - task.submitted_at < SUBMIT_GRACE:
                continue
            if state is not None and state.queued:
                continue
            if task.result is not None and task.result.exists():
                self._from_result(task)
                continue
            if state is not None and state.live:
                self._report_finished_cells(task)
                continue
            task.ended_at = task.ended_at or now
            if now - task.ended_at < RESULT_GRACE:
                continue
            ended = state.state if state is not None else (final_state(task_id) or "")
            self._from_folders(task, ended)

    def _report_finished_cells(self, task: Task) -> None:
        """Cells a running task has finished already (it trains several), reported as they finish."""
        if len(task.items) < 2:
            return
        for index, item in enumerate(task.items):
            if index not in task.reported and all(_cached(m) for m in _members(item)):
                task.reported.add(index)
                self.report(item, self._outcome_from_folders(item))

    def _outcome_from_folders(self, item: Any, error: str | None = None) -> dict[str, Any]:
        outcomes = []
        for member in _members(item):
            outcome = outcome_of(member.job["interface_dir"])
            if error and not _cached(member) and outcome.get("status") != "failed":
                outcome = {"status": "failed", "error": error}
            outcomes.append(outcome)
        if hasattr(item, "members"):
            return {"status": "pack", "members": outcomes}
        return outcomes[0]

    def _from_result(self, task: Task) -> None:
        from submitit.core.utils import pickle_load

        try:
            kind, value = pickle_load(task.result)
        except Exception as exc:  # noqa: BLE001 - unreadable or half-visible: judged from the folders instead
            kind, value = "error", f"{type(exc).__name__}: {exc}"
        if kind == "success" and isinstance(value, list) and len(value) == len(task.items):
            for index, (item, outcome) in enumerate(zip(task.items, value, strict=True)):
                if index not in task.reported:
                    self.report(item, outcome)
            self._done(task)
            return
        last = [line for line in str(value).strip().splitlines() if line.strip()]
        self._from_folders(task, "", error=f"Slurm job {task.task_id} raised {last[-1].strip() if last else 'an error'}")

    def _from_folders(self, task: Task, ended: str, error: str | None = None) -> None:
        """A task that ended without a result: cells it finished are reported finished, the rest failed."""
        for index, item in enumerate(task.items):
            if index in task.reported:
                continue
            for member in _members(item):
                cell = {"uuid": member.job["uuid"]}
                if error is not None:
                    if not _cached(member) and read_record(member.job["interface_dir"]).get("status") != "failed":
                        if not self._record(member, cell, error):
                            return
                elif not self._settle_cell(Path(member.job["interface_dir"]), cell, task.task_id, ended, task.record):
                    return  # its process is still on its way out: next round
            task.reported.add(index)
            self.report(item, self._outcome_from_folders(item))
        self._done(task)

    def _record(self, member: Any, cell: dict[str, str], error: str) -> bool:
        lock = try_cell_lock(self.store, cell["uuid"])
        if lock is None:
            return False
        try:
            if not _cached(member):
                record_failure(member.job["interface_dir"], error, error + "\n", getattr(member, "cell", None))
        finally:
            lock.release()
        return True

    def _done(self, task: Task) -> None:
        """The task is reported: drop it, and mark its array's record settled once none of its tasks is left."""
        self.tasks.pop(task.task_id, None)
        key = str(task.record.path)
        self.open_tasks[key] = self.open_tasks.get(key, 1) - 1
        if self.open_tasks[key] <= 0 and not task.record.settled:
            task.record.settled = True  # status and later runs skip it
            try:
                task.record.write()
            except OSError:
                pass
