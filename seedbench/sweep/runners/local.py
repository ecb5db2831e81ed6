"""Run prepared cells one after another in this process (the default for small grids).

The same execute_cell as a Ray worker runs, so both engines write identical folders; a cell that
another sweep is training right now is waited for and then reused.

While a cell trains, the next one is prepared (materialised in machinable, its run-record made) in a
background thread, so the driver's ~20 ms of preparation per cell is no longer added to every cell's
time (as the Ray engine's workers never wait for it either). machinable's connections (project,
storage, index) are per thread, so that thread enters the store's own (`context`); SQLite's busy
timeout absorbs the two threads' index writes, as it does for two sweeps on one store. Training
stays in the main thread: Ctrl-C still reaches the cell, which records itself interrupted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import AbstractContextManager as ContextManager
from typing import Any

from seedbench.sweep.runners.dispatch import PreparedCell, execute_cell

# called with (cell, outcome); outcome["status"] is finished / diverged / failed / reused
Report = Callable[[PreparedCell, dict[str, Any]], None]


class _Preparer:
    """One background thread, inside its own machinable contexts, that runs the feeder's refill."""

    def __init__(self, context: Callable[[], ContextManager[Any]]):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="seedbench-prepare")
        self.stack = contextlib.ExitStack()
        self.entered = self.pool.submit(lambda: self.stack.enter_context(context()))  # runs first: the thread's contexts

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        def run() -> Any:
            self.entered.result()  # a store that could not be entered fails this refill, in one line, like the main thread's would
            return fn(*args)

        return self.pool.submit(run)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pool.submit(self.stack.close).result()
        self.pool.shutdown(wait=True)


class LocalRunner:
    name = "local"

    def __init__(
        self,
        report: Report,
        on_start: Callable[[PreparedCell], None] | None = None,
        context: Callable[[], ContextManager[Any]] | None = None,
    ):
        """`context`: the store's machinable contexts (run.py passes open_store); without it, nothing is prepared ahead."""
        self.report = report
        self.on_start = on_start
        self.context = context
        self.queue: list[PreparedCell] = []
        self.running = False
        self.current: PreparedCell | None = None  # the cell being trained (a stopped sweep records it interrupted)
        self._preparer: _Preparer | None = None

    # the runner protocol shared with RayRunner
    def submit(self, cell: PreparedCell) -> None:
        for member in getattr(cell, "members", [cell]):  # a pack's job is built from its members' jobs
            member.job["threads"] = None  # one cell at a time: torch keeps its default (all cores) unless num_threads is set
        self.queue.append(cell)

    def poll(self) -> None:
        return None

    def counts(self) -> dict[str, int]:
        return {"running": int(self.running), "queued": len(self.queue)}

    def in_flight(self) -> list[PreparedCell]:
        return [self.current] if self.current is not None else []

    def run_to_end(self, tick: Callable[[], None], refill: Callable[[int], bool]) -> None:
        """Run the queue; `refill(n)` prepares and submits up to n more tasks, False once there are no more.

        With a `context`, the refill for the next cell runs while this one trains; its errors (a full
        disk) surface once the cell is done, and a cell that stops the sweep waits for it first.
        """
        more = True
        while True:
            if not self.queue and more:
                more = refill(1)
            if not self.queue:
                if more:
                    continue  # every cell of that batch was finished elsewhere meanwhile
                break
            cell = self.queue.pop(0)
            ahead = self._ahead(refill) if more and not self.queue else None
            self.running, self.current = True, cell
            if self.on_start is not None:
                self.on_start(cell)
            try:
                outcome = execute_cell(cell.job, wait_if_busy=True)
            except BaseException:
                if ahead is not None:
                    wait_for([ahead])  # the next cell is prepared (or not); the sweep stops either way
                raise
            if ahead is not None:
                more = ahead.result()
            self.running, self.current = False, None
            self.report(cell, outcome)
            tick()

    def _ahead(self, refill: Callable[[int], bool]) -> Future | None:
        if self.context is None:
            return None
        if self._preparer is None:
            self._preparer = _Preparer(self.context)
        return self._preparer.submit(refill, 1)

    def close(self) -> None:
        if self._preparer is not None:
            self._preparer.close()
            self._preparer = None
