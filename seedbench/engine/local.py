"""Run pending cells one after another in this process (the default for small grids)."""

from __future__ import annotations

from collections.abc import Callable

from seedbench.engine.plan import PlannedCell

# called with (cell, outcome) where outcome is "finished", "diverged" or "failed"
Report = Callable[[PlannedCell, str, str | None], None]


def run_local(pending: list[PlannedCell], report: Report, on_start: Callable[[PlannedCell], None] | None = None) -> None:
    for planned in pending:
        if on_start is not None:
            on_start(planned)
        try:
            planned.interface.launch()
        except Exception as exc:  # the cell failed: recorded in its folder, the sweep goes on
            record = planned.record()
            report(planned, "failed", record.get("error") or f"{type(exc).__name__}: {exc}")
            continue
        record = planned.record()
        report(planned, record.get("status", "finished"), record.get("reason"))
