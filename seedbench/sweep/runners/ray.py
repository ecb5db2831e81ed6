"""The Ray engine: each pending cell of a grid runs as one Ray task.

The driver prepares every cell (seedbench.sweep.runners.dispatch.prepare_cell: it alone writes the machinable
index) and submits a task that receives a plain dict of path strings; the task rebuilds the interface
and its run-record from their folders inside `with Project(...)` and writes files only. Cells are
prepared just in time: the runner asks for more while fewer than QUEUED_PER_CPU tasks per cluster CPU
wait to start, so a 10,000-cell grid never sits in Ray's queue (or the driver's memory) at once.

- Resources: each task asks for the cell's num_cpus / fractional num_gpus / custom resources (e.g.
  {"IPU": 1}); requests no live node can ever satisfy are refused before anything runs. A task holding
  a GPU trains on "cuda" (Ray makes the assigned GPU the only visible one); every other task on CPU,
  with torch threads = its CPU share, so co-located workers do not oversubscribe the cores.
- Faults: a worker or node that dies mid-cell makes Ray retry the task (max_retries); the retry continues
  the same run-record, so the cell ends with one record. A cell that raises is recorded as failed in its
  folder and is not retried by Ray (that is what `--retry-failed` is for). A cell some other sweep is
  training is "busy": it is resubmitted with a back-off until the other sweep is done, then reused.
  Tasks whose resources disappear from the cluster (their node died) are failed after a grace period
  instead of waiting forever.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from seedbench.config import DEVICE_ENV
from seedbench.errors import SeedbenchError
from seedbench.sweep.runners.dispatch import WORKER_FILE, PreparedCell, StoreFull, disk_full, execute_cell, record_failure
from seedbench.sweep.runners.resources import Request, check_feasible, fits

MAX_RETRIES = 3  # worker or node deaths per cell before the cell is recorded as failed
BUSY_BACKOFF = (0.5, 5.0)  # first and longest wait before resubmitting a cell another sweep is training
INFEASIBLE_GRACE = 30.0  # seconds a queued cell may wait for resources that no live node has any more
FEASIBILITY_CHECK_EVERY = 5.0  # seconds between those checks
QUEUED_PER_CPU = 2  # tasks waiting to start, per CPU of the cluster, before the driver prepares more

Report = Callable[[PreparedCell, dict[str, Any]], None]


def _ray_cell(job: dict[str, Any]) -> dict[str, Any]:
    """The task body (runs in a Ray worker): pick the device Ray assigned, then execute_cell."""
    import ray

    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    device = "cuda" if gpu_ids else "cpu"
    job = dict(job)
    job["env"] = {**(job.get("env") or {}), DEVICE_ENV: device}
    context = ray.get_runtime_context()
    worker = {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "gpu_ids": gpu_ids,
        "device": device,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "task_id": context.get_task_id(),
    }
    return execute_cell(job, wait_if_busy=False, worker=worker)


def _warm() -> int:
    """Import what every cell needs once per worker while the driver is still planning: machinable, and
    torch with the training loop (seconds; a cell that imported it itself would wait for it first)."""
    import machinable  # noqa: F401
    import torch  # noqa: F401

    import seedbench.sweep.runners.dispatch  # noqa: F401
    import seedbench.train.loop  # noqa: F401
    import seedbench.train.trial  # noqa: F401

    return os.getpid()


_REMOTES: dict[str, Any] = {}


def _remote(name: str) -> Any:
    if name not in _REMOTES:
        import ray

        _REMOTES[name] = ray.remote({"cell": _ray_cell, "warm": _warm}[name])
    return _REMOTES[name]


def connect(
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    resources: Mapping[str, float] | None = None,
    store: Path | None = None,
) -> bool:
    """Join a cluster (address "auto" or HOST:PORT) or start a local Ray sized to this machine.

    Returns whether this call started the connection (and so should shut it down). Token
    authentication stays as Ray sets it up (on by default in Ray 2.60; the token lives in
    ~/.ray/auth_token or $RAY_AUTH_TOKEN). A local Ray starts without the dashboard's UI and modules
    (a sweep uses none of them; what Ray still starts of it listens on loopback only). With `store`,
    a local Ray's session is recorded there and watched, so that nothing of it outlives a driver that
    is killed (seedbench.sweep.runners.orphans).
    """
    import ray

    if ray.is_initialized():
        return False
    # Ray logs a warning on every start that token authentication is on, with how to turn it off; it stays
    # on here (docs/cluster.md says how nodes and CLIs get the token), so the reminder is not repeated.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        logging.getLogger(__name__).warning(
            "RAY_AUTH_MODE=disabled: Ray token authentication is off, so anyone who can reach the cluster can run code on it; see docs/cluster.md"
        )
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, "namespace": "seedbench"}
    check_address(address)
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(
                address="local",  # a fresh instance, even when another Ray runs on this machine (ray.init() would join it)
                num_cpus=num_cpus or os.cpu_count() or 1,
                num_gpus=num_gpus,
                resources=dict(resources or {}) or None,
                include_dashboard=False,
                dashboard_host="127.0.0.1",
                object_store_memory=256 * 1024**2,
                **common,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = (
            " (is `ray start --head` running there, and does this machine have the cluster's token in ~/.ray/auth_token or $RAY_AUTH_TOKEN?)"
            if address
            else ""
        )
        raise SeedbenchError(f"cannot start {where}: {first}{hint}") from None
    if not address and store is not None:
        _watch_session(store)
    return True


_OWNED: dict[str, Any] = {}  # the record and watchdog of the local Ray this process started


def _watch_session(store: Path) -> None:
    """Record the local Ray's session in the store and start its watchdog (see orphans' docstring)."""
    import ray

    from seedbench.sweep.runners import orphans

    try:
        session_dir = ray._private.worker._global_node.get_session_dir_path()
    except AttributeError:  # Ray moved it: no watchdog, and nothing to reap later
        return
    record = orphans.record_driver(store, session_dir)
    if record is not None:
        _OWNED.update(record=record, watchdog=orphans.start_watchdog(record))


PROBE_TIMEOUT = 5.0  # seconds to wait for a TCP connection to a cluster's address before calling it unreachable


def check_address(address: str | None, timeout: float = PROBE_TIMEOUT) -> None:
    """Refuse, in one line and within seconds, a HOST:PORT that nothing listens on.

    ray.init retries an unreachable GCS for minutes (printing a warning every few seconds), so a typo
    in --ray-address would hang the sweep. "auto", "local" and no address are left to ray.init. A
    loopback host is also tried as Ray would contact it (the node's own address), so a head that
    listens only there still counts as reachable.
    """
    import socket

    if not address or address in ("auto", "local"):
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, _, port_text = target.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SeedbenchError(f"--ray-address {address!r}: give auto or HOST:PORT of the cluster's head, e.g. 10.0.0.5:6379")
    port = int(port_text)
    hosts = [host]
    if host in ("localhost", "127.0.0.1", "::1"):
        try:
            from ray._private.services import resolve_ip_for_localhost

            hosts.append(resolve_ip_for_localhost(host))
        except Exception:  # noqa: BLE001 - only a second address to try
            pass
    reason = "no answer"
    for candidate in dict.fromkeys(hosts):
        try:
            with socket.create_connection((candidate, port), timeout=timeout):
                return
        except TimeoutError:
            reason = f"no answer within {timeout:g} s"
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
    raise SeedbenchError(
        f"cannot reach the Ray cluster at {address} ({reason}); is `ray start --head` running there and the port open? "
        "Check the address, or drop --ray-address to start a local Ray"
    )


def shutdown() -> None:
    import ray

    from seedbench.sweep.runners import orphans

    ray.shutdown()
    orphans.forget_driver(_OWNED.pop("record", None))  # first: the watchdog must find no record
    orphans.stop_watchdog(_OWNED.pop("watchdog", None))


def cluster_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def check_cluster(requests: Mapping[Request, Iterable[str]]) -> None:
    """Refuse requests that no live node of the connected cluster can ever satisfy."""
    check_feasible(requests, cluster_nodes())


def warm_workers(count: int | None = None) -> None:
    """Start (and pre-import) one worker per CPU while the driver plans; fire and forget."""
    import ray

    n = count if count is not None else min(128, int(ray.cluster_resources().get("CPU", 0)))
    for _ in range(max(0, n)):
        _remote("warm").options(num_cpus=1, max_retries=0).remote()


class RayRunner:
    """Submits prepared cells as Ray tasks and reports each outcome as it arrives."""

    name = "ray"

    def __init__(self, report: Report, max_retries: int = MAX_RETRIES, infeasible_grace: float | None = None):
        self.report = report
        self.max_retries = max_retries
        self.infeasible_grace = INFEASIBLE_GRACE if infeasible_grace is None else infeasible_grace
        self.inflight: dict[Any, PreparedCell] = {}  # ObjectRef -> cell
        self.submitted_at: dict[Any, float] = {}
        self.unstarted: dict[Any, None] = {}  # in submission order
        self.done: queue.Queue = queue.Queue()  # refs whose result is ready (filled by Ray's callback thread)
        self.deferred: list[tuple[float, PreparedCell]] = []  # busy cells, resubmitted at the given time
        self.busy_waits: dict[str, float] = {}
        self.infeasible_since: dict[Request, float] = {}
        self.cancelled: dict[Any, str] = {}
        self._options: dict[Request, Any] = {}
        self._last_check = 0.0
        self.window: int | None = None  # tasks allowed to wait for a worker (set from the cluster on first use)

    # -- the runner protocol shared with LocalRunner -------------------------------------------------
    def submit(self, cell: PreparedCell) -> None:
        options = self._options.get(cell.request)
        if options is None:
            options = _remote("cell").options(**cell.request.ray_options(), max_retries=self.max_retries, retry_exceptions=False)
            self._options[cell.request] = options
        ref = options.remote(cell.job)
        self.inflight[ref] = cell
        self.submitted_at[ref] = time.time()
        self.unstarted[ref] = None
        ref.future().add_done_callback(lambda _future, ref=ref: self.done.put(ref))

    def poll(self, timeout: float = 0.0) -> int:
        """Handle finished tasks (waiting up to `timeout` for the first); returns how many were handled."""
        self._resubmit_due()
        handled = 0
        try:
            ref = self.done.get(timeout=timeout) if timeout > 0 else self.done.get_nowait()
        except queue.Empty:
            return 0
        while True:
            self._handle(ref)
            handled += 1
            try:
                ref = self.done.get_nowait()
            except queue.Empty:
                return handled

    def counts(self) -> dict[str, int]:
        """Cells in flight: running (a worker has started them) and queued (waiting for resources or busy)."""
        self._refresh_started()
        running = len(self.inflight) - len(self.unstarted)
        return {"running": running, "queued": len(self.unstarted) + len(self.deferred)}

    def in_flight(self) -> list[PreparedCell]:
        """Cells submitted and not yet reported (a sweep stopped by a full disk records them interrupted)."""
        return list(self.inflight.values())

    def wants(self) -> int:
        """How many more tasks to submit now: the queue ahead of the workers is kept QUEUED_PER_CPU deep."""
        if self.window is None:
            import ray

            self.window = max(4, QUEUED_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))
        self._refresh_started()
        return max(0, self.window - len(self.unstarted) - len(self.deferred))

    def run_to_end(self, tick: Callable[[], None], refill: Callable[[int], bool], interval: float = 0.25) -> None:
        """Collect every task's outcome; `refill(n)` prepares and submits up to n more, False once there are no more."""
        last_tick = 0.0
        more = True
        while more or self.inflight or self.deferred:
            wanted = self.wants() if more else 0
            if wanted:
                more = refill(wanted)
            self.poll(timeout=0.0 if wanted and more else interval)
            now = time.time()
            if now - self._last_check > FEASIBILITY_CHECK_EVERY:
                self._check_feasible_still()
                self._last_check = now
            if now - last_tick >= interval:
                tick()
                last_tick = now
        tick()

    def close(self) -> None:
        import ray

        for ref in list(self.inflight):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass

    # -- internals -----------------------------------------------------------------------------------
    def _handle(self, ref: Any) -> None:
        import ray

        cell = self.inflight.pop(ref, None)
        self.submitted_at.pop(ref, None)
        self.unstarted.pop(ref, None)
        if cell is None:
            return
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as exc:  # worker/node lost more than max_retries times, or cancelled
            if disk_full(getattr(exc, "cause", None)):  # the store's disk is full: the sweep stops (run.py says so)
                self.inflight[ref] = cell  # still in flight: recorded interrupted with the others
                raise StoreFull(_first_line(exc)) from None
            reason = self.cancelled.pop(ref, None) or _first_line(exc)
            members = getattr(cell, "members", [cell])
            for member in members:
                record_failure(member.interface_dir, f"{type(exc).__name__}: {reason}", f"{type(exc).__name__}: {exc}", member.cell)
            failed = {"status": "failed", "error": f"{type(exc).__name__}: {reason}"}
            outcome = {"status": "pack", "members": [dict(failed) for _ in members]} if hasattr(cell, "members") else failed
        if outcome.get("status") == "busy":
            wait = self.busy_waits.get(cell.label, BUSY_BACKOFF[0] / 2) * 2
            wait = min(wait, BUSY_BACKOFF[1])
            self.busy_waits[cell.label] = wait
            self.deferred.append((time.time() + wait, cell))
            return
        self.busy_waits.pop(cell.label, None)
        self.report(cell, outcome)

    def _resubmit_due(self) -> None:
        if not self.deferred:
            return
        now = time.time()
        due = [c for t, c in self.deferred if t <= now]
        self.deferred = [(t, c) for t, c in self.deferred if t > now]
        for cell in due:
            self.submit(cell)

    def _refresh_started(self, limit: int = 64) -> None:
        """A cell is running once its worker wrote worker.json (checked for the oldest queued cells only)."""
        checked = 0
        for ref in list(self.unstarted):
            if checked >= limit:
                break
            checked += 1
            cell = self.inflight.get(ref)
            if cell is None:
                self.unstarted.pop(ref, None)
                continue
            try:
                if (Path(cell.job["run_dir"]) / WORKER_FILE).stat().st_mtime >= self.submitted_at[ref] - 1.0:
                    self.unstarted.pop(ref, None)
                    checked -= 1
            except OSError:
                pass

    def _check_feasible_still(self) -> None:
        """Cancel cells whose resources no live node offers any more (after a grace period)."""
        import ray

        # every cell in flight: one that was running on a dead node is queued again by Ray's retry
        waiting = {cell.request for cell in self.inflight.values()}
        if not waiting:
            return
        nodes = cluster_nodes()
        now = time.time()
        for request in waiting:
            if any(fits(request, n) for n in nodes):
                self.infeasible_since.pop(request, None)
                continue
            since = self.infeasible_since.setdefault(request, now)
            if now - since < self.infeasible_grace:
                continue
            reason = f"no live node of the Ray cluster offers {request.describe()} any more"
            for ref in [r for r, cell in self.inflight.items() if cell.request == request]:
                self.cancelled[ref] = reason
                ray.cancel(ref, force=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
