"""Prepare a cell in the driver; execute it anywhere with nothing but path strings.

The split every engine follows (docs/engine.md, "Who writes what"):

- `prepare_cell` runs in the driver, the only process that writes the machinable index: it
  materialises the cell's interface and prepares its run-record (`Execution.prepare_dispatch`, which
  continues an unfinished record of the same cell instead of minting a second one).
- `execute_cell` runs in a worker (a Ray task, or the driver itself for the local engine). It receives
  a plain dict of strings, enters `Project(project_dir)`, rebuilds the interface and its run-record
  from their directories and calls `continue_run`: it writes files only, never the index.

A per-cell file lock (seedbench.sweep.runners.locking) makes sure two processes never train the same cell
into the same folder at once: a second sweep that reaches a cell being trained elsewhere is told
"busy", waits, and then reuses the result.

This module is imported by every Ray worker: it must stay light (no torch, no seedbench.train.trial).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from seedbench.config import DEVICE_ENV, PLACEMENT_ENV, PLUGIN_ENV  # noqa: F401 - engines import them from here
from seedbench.errors import SeedbenchError
from seedbench.record import CACHED_MARKER, RUN_FILE, TRACEBACK_FILE, WORKER_FILE, read_record_dict, write_json_atomic
from seedbench.sweep.runners.locking import try_cell_lock, wait_cell_lock
from seedbench.sweep.runners.provenance import MANIFESTS, begin_sweep  # noqa: F401 - the engines start a sweep through here
from seedbench.sweep.runners.resources import Request, request_for

FORWARDED_ENV_PREFIXES = ("SEEDBENCH_", "MACHINABLE_")


@dataclass
class PreparedCell:
    """A cell whose interface and run-record exist; `job` is all a worker gets (strings and numbers)."""

    cell: Any  # seedbench.sweep.grid.Cell
    request: Request
    job: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.cell.label

    @property
    def interface_dir(self) -> Path:
        return Path(self.job["interface_dir"])

    @property
    def run_dir(self) -> Path:
        return Path(self.job["run_dir"])


def forwarded_env() -> dict[str, str]:
    """The driver's seedbench/machinable settings, handed to workers (which inherit the cluster's env)."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES) and k != "MACHINABLE_INDEX"}


def forget_entry(record_id: str, directory: Path) -> None:
    """Hide a half-materialised cell from the index and move its folder aside, so it is built afresh."""
    from machinable import Index

    Index.get().hide(record_id)
    if directory.exists():
        os.replace(directory, directory.with_name(f"{directory.name}.broken-{int(time.time())}"))


def prepare_cell(
    planned: Any,
    store: Path,
    project_dir: Path,
    override: dict[str, float] | None = None,
    env: dict[str, str] | None = None,
    ahead: bool = False,
) -> PreparedCell | None:
    """Driver only, under the index lock: materialise the cell and prepare (or continue) its run-record.

    None when the cell turns out to be finished already (by a sweep running beside this one).
    `ahead`: the engine prepares while earlier cells run (local, Ray), so work done here is free; then
    the run-record's resources file, which machinable otherwise computes and writes at the start of
    every run (~4 ms of the cell's own time), is written now and only read by the run.
    """
    from machinable.utils import uri_to_path

    from seedbench.sweep.runners.execution import SweepExecution

    interface = planned.interface
    if interface.is_materialized() and os.path.exists(os.path.join(interface.local_directory(), CACHED_MARKER)):
        return None  # a concurrent sweep finished it since planning: reuse, and mint no second run-record
    placement = planned.resolved.placement
    request = request_for(placement.model_dump(), override)
    execution = SweepExecution(resources=request.ray_options())
    entry = execution.prepare_dispatch(interface)
    if ahead:
        execution.computed_resources()
    run_dir = os.path.abspath(uri_to_path(entry.local_uri or entry.storage_uri))
    job = {
        "label": planned.cell.label,
        "project_dir": str(project_dir),
        "store_dir": str(store),
        "uuid": str(interface.uuid),
        "method": planned.resolved.method.name,
        "params": planned.resolved.params,
        "interface_dir": os.path.abspath(interface.local_directory()),
        "run_dir": run_dir,
        "threads": request.threads,
        "env": {**dict(env if env is not None else forwarded_env()), PLACEMENT_ENV: placement.model_dump_json()},
    }
    return PreparedCell(planned.cell, request, job)


read_record = read_record_dict
write_json = write_json_atomic


def write_worker(path: Path, info: dict[str, Any]) -> None:
    """worker.json, atomically but without an fsync: it says where a cell ran (and, by its mtime, that it
    started), which a kill never loses; an fsync costs more than the file is worth, twice per cell."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(info, indent=1, default=str))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # left only by a failed write (a full disk)


def record_failure(interface_dir: str | Path, error: str, detail: str, cell: Any = None) -> None:
    """Mark a cell failed when it died outside run_trial (worker lost for good, cancelled, broken record)."""
    directory = Path(interface_dir)
    if (directory / CACHED_MARKER).exists():  # machinable recorded it finished: nothing to undo
        return
    record = read_record(directory)
    if cell is not None and "config" not in record:  # it never started: say which cell this is
        record.update({"method": cell.method, "config": {"model": cell.model, "dataset": cell.dataset, **cell.seed_values}})
    record.update({"status": "failed", "error": error, "finished_at": time.time()})
    write_json(directory / RUN_FILE, record)
    (directory / TRACEBACK_FILE).write_text(detail if detail.endswith("\n") else detail + "\n")


class StoreFull(SeedbenchError):
    """The store's filesystem ran out of space (or quota) while the sweep wrote to it.

    Not a cell's failure: the cell is recorded as interrupted (as far as the full disk allows) and the
    sweep stops in one line; once space is freed, the same command continues where it stopped.
    """


FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or anything it was raised from or while handling, says the disk is full.

    Writers wrap the OSError: torch.save raises a RuntimeError in its context, machinable a
    DispatchException with it as the cause, SQLite says "database or disk is full".
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StoreFull):
            return True
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if "database or disk is full" in str(exc) or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


FULL_REASON = "StoreFull: the store's disk filled up while the cell ran"


def mark_interrupted(interface_dir: str | Path, reason: str = FULL_REASON) -> bool:
    """Best effort, on a full disk: record a cell that was stopped mid-training as interrupted, not failed.

    The next run of the sweep redoes an interrupted cell (from its last checkpoint); a cell recorded
    failed would be skipped. The record is written atomically where there is room, else rewritten in
    place when the new text fits in the old file's bytes; when neither works it stays as it was
    ("running" also counts as pending). True when the record says interrupted now.
    """
    directory = Path(interface_dir)
    if (directory / CACHED_MARKER).exists():
        return False
    record = read_record(directory)
    if not record or record.get("status") in ("finished", "diverged", "interrupted"):
        return record.get("status") == "interrupted"
    record.update({"status": "interrupted", "error": reason, "finished_at": time.time()})
    with contextlib.suppress(OSError):
        (directory / TRACEBACK_FILE).unlink(missing_ok=True)  # a failure the full disk caused is no failure: frees its bytes too
    try:
        write_json(directory / RUN_FILE, record)
        return True
    except OSError:
        pass
    for leftover in directory.glob(f"{RUN_FILE}.*.tmp"):  # the atomic write's half-written file
        with contextlib.suppress(OSError):
            leftover.unlink()
    text = json.dumps(record, default=str).encode()
    try:
        with open(directory / RUN_FILE, "r+b") as fh:
            if len(text) > os.fstat(fh.fileno()).st_size:
                return False
            fh.write(text)
            fh.truncate()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def stop_on_full_disk(store: Path) -> Iterator[SimpleNamespace]:
    """Turn a full disk anywhere in a sweep into StoreFull: one line naming the store and the fix.

    Set `.runner` on the yielded namespace once the engine exists: the cells it has in flight are
    recorded as interrupted on the way out (after the engine has stopped them).
    """
    state = SimpleNamespace(runner=None)
    try:
        yield state
    except Exception as exc:
        if not disk_full(exc):
            raise
        in_flight = getattr(state.runner, "in_flight", None)
        cells = list(in_flight()) if callable(in_flight) else []
        marked = sum(mark_interrupted(member.interface_dir) for cell in cells for member in getattr(cell, "members", [cell]))
        raise StoreFull(
            f"the store {store} ran out of disk space (No space left on device)"
            + (f"; {marked} cell(s) in flight recorded as interrupted" if marked else "")
            + "; free space on that disk (or pass --store DIR on another one), then run the same command again: "
            "finished cells are reused and interrupted ones continue from their last checkpoint"
        ) from None


_INTERRUPTED: list[BaseException] = []  # a stop from outside, caught inside a cell and re-raised by execute_cell
_FULL: list[BaseException] = []  # a full disk, caught inside a cell; execute_cell records it interrupted and stops the sweep


def contained(train: Any, directory: Path) -> None:
    """Run a cell's training so that nothing it raises reaches machinable (which prints tracebacks).

    A failure is recorded in the cell's folder; a stop from outside (Ctrl-C, Ray ending the task) and
    a full disk (no failure of the cell's) are kept and re-raised by execute_cell once machinable has
    returned.
    """
    try:
        train()
    except (KeyboardInterrupt, SystemExit) as exc:
        _INTERRUPTED.append(exc)
    except Exception as exc:  # noqa: BLE001 - recorded, reported as this cell's failure
        if disk_full(exc):  # not the cell's fault: execute_cell records it interrupted and stops the sweep
            _FULL.append(exc)
            return
        if read_record(directory).get("status") != "failed":  # it failed before run_trial could record it
            record_failure(directory, f"{type(exc).__name__}: {exc}", traceback.format_exc())


def outcome_of(directory: str | Path, status: str | None = None) -> dict[str, Any]:
    record = read_record(directory)
    return {
        "status": status or record.get("status") or ("finished" if (Path(directory) / CACHED_MARKER).exists() else "failed"),
        "reason": record.get("reason"),
        "error": record.get("error"),
        "seconds": record.get("seconds"),
        "resumed_from_epoch": record.get("resumed_from_epoch"),
    }


def _set_threads(threads: int | None) -> None:
    if not threads:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for a torch imported after this point
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


_PROJECTS: dict[str, Any] = {}


def _project(project_dir: str) -> Any:
    """One machinable Project per project folder and worker process, entered afresh for every cell.

    A new Project per cell would resolve its provider (re-importing the project's module) each time;
    machinable's version lookup (importlib.metadata, for the run's host.json) is cached likewise.
    """
    import functools

    import machinable
    from machinable import Project

    if not isinstance(machinable.get_version, functools._lru_cache_wrapper):
        machinable.get_version = functools.cache(machinable.get_version)
    if project_dir not in _PROJECTS:
        _PROJECTS[project_dir] = Project(project_dir)
    return _PROJECTS[project_dir]


def execute_cell(job: dict[str, Any], wait_if_busy: bool = False, worker: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one prepared cell into its folders. Writes files only; returns a small outcome dict.

    status: finished / diverged / failed (trained here), reused (someone else finished it first),
    busy (someone else is training it right now; only when wait_if_busy is False).
    """
    if "members" in job:
        return execute_pack(job, worker)
    _FULL.clear()  # a worker runs many cells: nothing of an earlier one's is this one's
    started = time.time()
    project_dir, interface_dir, run_dir = job["project_dir"], job["interface_dir"], job["run_dir"]
    if not wait_if_busy:
        lock = try_cell_lock(job["store_dir"], job["uuid"])
        if lock is None:
            return {"status": "busy"}
    else:
        lock = wait_cell_lock(job["store_dir"], job["uuid"])
    saved_env = {k: os.environ.get(k) for k in job.get("env", {})}
    try:
        if os.path.exists(os.path.join(interface_dir, CACHED_MARKER)):
            return outcome_of(interface_dir, "reused")
        os.environ.update(job.get("env", {}))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": started, "threads": job.get("threads"), **(worker or {})}
        write_worker(Path(run_dir) / WORKER_FILE, info)
        _set_threads(job.get("threads"))
        if project_dir not in sys.path:  # components import each other as `components.<name>`
            sys.path.insert(0, project_dir)
        from machinable import Execution, Interface

        try:
            with _project(project_dir):
                interface = Interface.from_directory(interface_dir)
                run = Execution.from_directory(run_dir)
                _set_threads(job.get("threads"))  # the component may have imported torch just now
                run.continue_run(interface)
            if _INTERRUPTED:  # stopped from outside: not finished, whatever machinable marked
                Path(interface_dir, CACHED_MARKER).unlink(missing_ok=True)
                raise _INTERRUPTED.pop()
            if _FULL:  # the disk filled up: not finished either (handled below)
                raise StoreFull(str(_FULL.pop()))
            if read_record(interface_dir).get("status") == "failed":  # machinable saw a normal return
                Path(interface_dir, CACHED_MARKER).unlink(missing_ok=True)
        except Exception as exc:  # the cell failed: its folder says why, the sweep goes on
            cause = exc.__cause__ or exc  # machinable wraps whatever the cell raised in DispatchException
            if isinstance(cause, KeyboardInterrupt | SystemExit):
                raise cause from None  # stopped from outside (Ctrl-C, Ray ending the task): not a failure
            if disk_full(exc):
                raise  # handled below: interrupted, and the sweep stops
            record = read_record(interface_dir)
            if record.get("status") != "failed":  # failed before run_trial could record it
                record_failure(interface_dir, f"{type(cause).__name__}: {cause}", traceback.format_exc())
        torch = sys.modules.get("torch")
        if torch is not None:  # what the cell really trained with, for the record
            info["torch_threads"] = torch.get_num_threads()
            write_worker(Path(run_dir) / WORKER_FILE, info)
        outcome = outcome_of(interface_dir)
        outcome.update({"pid": info["pid"], "node_id": info.get("node_id"), "wall": time.time() - started})
        return outcome
    except Exception as exc:
        if not disk_full(exc):
            raise
        Path(interface_dir, CACHED_MARKER).unlink(missing_ok=True)  # machinable may have marked it done
        mark_interrupted(interface_dir)
        raise StoreFull(f"{job['label']}: the store's disk is full") from None
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        lock.release()


@dataclass
class PreparedPack:
    """Prepared cells that differ only in their seeds, trained as one task (seedbench.train.packed).

    It goes through the engines like one cell: it requests what one of its cells requests (a pack
    replaces K sequential runs on one worker) and its outcome lists every member's.
    """

    members: list[PreparedCell]
    pack_id: str

    @property
    def cell(self) -> Any:
        return self.members[0].cell

    @property
    def request(self) -> Request:
        return self.members[0].request

    @property
    def label(self) -> str:
        return f"pack of {len(self.members)}: {self.members[0].label}"

    @property
    def job(self) -> dict[str, Any]:
        first = self.members[0].job
        return {**first, "pack_id": self.pack_id, "members": [m.job for m in self.members]}

    @property
    def interface_dir(self) -> Path:
        return self.members[0].interface_dir

    @property
    def run_dir(self) -> Path:
        return self.members[0].run_dir


def execute_pack(job: dict[str, Any], worker: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a pack's unfinished members together, then let machinable record each one as a finished cell.

    Members finished elsewhere meanwhile are reused. If the pack as a whole cannot train (an error that
    is not one member's divergence), its members are trained solo instead, so a packing problem never
    becomes a failed cell. Returns {"status": "pack", "members": [outcome per member]}.
    """
    from seedbench.config import PLACEMENT_ENV
    from seedbench.train.trial import PACK_ENV

    members = job["members"]
    todo = [m for m in members if not os.path.exists(os.path.join(m["interface_dir"], CACHED_MARKER))]
    saved_env = {k: os.environ.get(k) for k in [*job.get("env", {}), PACK_ENV]}
    try:
        os.environ.update(job.get("env", {}))
        if len(todo) > 1:
            locks = [wait_cell_lock(m["store_dir"], m["uuid"]) for m in todo]
            try:
                _train_pack(job, todo, worker)
                os.environ[PACK_ENV] = job["pack_id"]
            except Exception as exc:  # noqa: BLE001 - the members run solo below; the reason is kept in each folder
                if disk_full(exc):  # no packing problem: every member stops as interrupted, and so does the sweep
                    for m in todo:
                        mark_interrupted(m["interface_dir"])
                    raise StoreFull(f"{job['label']}: the store's disk is full") from None
                detail = traceback.format_exc()
                for m in todo:
                    (Path(m["run_dir"]) / "pack-error.txt").write_text(detail)
            finally:
                for lock in locks:
                    lock.release()
        outcomes = [{"label": m["label"], **execute_cell(m, wait_if_busy=True, worker=worker)} for m in members]
        return {"status": "pack", "members": outcomes, "placement": os.environ.get(PLACEMENT_ENV)}
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _train_pack(job: dict[str, Any], todo: list[dict[str, Any]], worker: dict[str, Any] | None) -> None:
    from seedbench.config import PLACEMENT_ENV
    from seedbench.registry import load_plugins_from_env, resolve_method
    from seedbench.train.trial import run_pack

    for m in todo:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": time.time(),
            "threads": job.get("threads"),
            "pack_id": job["pack_id"],
            **(worker or {}),
        }
        write_worker(Path(m["run_dir"]) / WORKER_FILE, info)
    _set_threads(job.get("threads"))
    load_plugins_from_env()
    cells = []
    for m in todo:
        method, _ = resolve_method(m["method"])
        cells.append((method, method.resolve(m["params"]), m["interface_dir"], m["uuid"]))
    run_pack(cells, json.loads(os.environ.get(PLACEMENT_ENV) or "{}"), job["pack_id"])
