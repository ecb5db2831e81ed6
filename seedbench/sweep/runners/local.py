"""Run prepared cells one after another in this process (the default for small grids).

The same execute_cell as a Ray worker runs, so both engines write identical folders; a cell that
another sweep is training right now is waited for and then reused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seedbench.sweep.runners.dispatch import PreparedCell, execute_cell

# called with (cell, outcome); outcome["status"] is finished / diverged / failed / reused
Report = Callable[[PreparedCell, dict[str, Any]], None]


class LocalRunner:
    name = "local"

    def __init__(self, report: Report, on_start: Callable[[PreparedCell], None] | None = None):
        self.report = report
        self.on_start = on_start
        self.queue: list[PreparedCell] = []
        self.running = False
        self.current: PreparedCell | None = None  # the cell being trained (a stopped sweep records it interrupted)

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
        """Run the queue; `refill(n)` prepares and submits up to n more tasks, False once there are no more."""
        more = True
        while True:
            if not self.queue and more:
                more = refill(1)
            if not self.queue:
                if more:
                    continue  # every cell of that batch was finished elsewhere meanwhile
                break
            cell = self.queue.pop(0)
            self.running, self.current = True, cell
            if self.on_start is not None:
                self.on_start(cell)
            outcome = execute_cell(cell.job, wait_if_busy=True)
            self.running, self.current = False, None
            self.report(cell, outcome)
            tick()

    def close(self) -> None:
        return None
