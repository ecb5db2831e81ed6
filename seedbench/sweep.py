"""Run a sweep: plan the grid against the store, execute what is pending, summarise.

The progress bar counts cells; the summary says what was trained, reused, diverged or failed, and the
failed cells are named so they can be inspected (their traceback is in the run folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from seedbench.grid import SweepSpec


@dataclass
class SweepSummary:
    store: Path
    total: int = 0
    trained: int = 0
    reused: int = 0
    diverged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell label, error)
    skipped_failed: list[str] = field(default_factory=list)  # failed earlier, not retried

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped_failed


def run_sweep(spec: SweepSpec, retry_failed: bool = False, console: Console | None = None, quiet: bool = False) -> SweepSummary:
    from seedbench.engine import open_store
    from seedbench.engine.local import run_local
    from seedbench.engine.plan import plan_cells

    console = console or Console(stderr=True)
    cells = spec.cells()
    with open_store(spec.store) as directory:
        summary = SweepSummary(store=directory, total=len(cells))
        with console.status(f"planning {len(cells)} cells", spinner="dots") if not quiet else _null():
            planned = plan_cells(cells)
        pending = []
        for p in planned:
            if p.state == "finished":
                summary.reused += 1
            elif p.state == "failed" and not retry_failed:
                summary.skipped_failed.append(p.cell.label)
            else:
                pending.append(p)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("done {task.fields[done]} failed {task.fields[failed]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=console, disable=quiet, transient=False) as progress:
            task = progress.add_task("sweep", total=len(pending), done=0, failed=0)

            def on_start(p):
                progress.update(task, description=p.cell.label)

            def report(p, outcome: str, detail: str | None) -> None:
                if outcome == "failed":
                    summary.failed.append((p.cell.label, detail or "unknown error"))
                else:
                    summary.trained += 1
                    summary.diverged += outcome == "diverged"
                progress.update(task, advance=1, done=summary.trained, failed=len(summary.failed))

            run_local(pending, report, on_start)
            progress.update(task, description="sweep")
    return summary


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
