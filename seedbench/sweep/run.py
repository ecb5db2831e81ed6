"""Run a sweep: plan the grid against the store, execute what is pending, summarise.

Under the index lock (so two sweeps on one store never materialise a cell twice) the driver plans
every cell, records the sweep's cell list in the store (`seedbench status` reads it), and prepares
each pending cell's run-record, handing it to the engine as soon as it is prepared: the local engine
trains cells one after another in this process; the Ray engine submits each as a task, so the first
cells run while the rest are still being prepared.

The progress bar counts cells: done, running, failed, pending, with an ETA; the summary says what was
trained, reused, diverged or failed, and names the failed cells (their traceback is in the run folder).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from seedbench.errors import ConfigError
from seedbench.sweep.grid import SweepSpec

ENGINES = ("local", "ray")


@dataclass
class SweepSummary:
    store: Path
    total: int = 0
    trained: int = 0
    reused: int = 0
    diverged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell label, error)
    skipped_failed: list[str] = field(default_factory=list)  # failed earlier, not retried
    engine: str = "local"
    sweep_file: Path | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # connect, plan, prepare (incl. submit), run (the rest)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped_failed


class _Progress:
    """The live bar: done / running / failed / pending of the cells this run executes, and an ETA."""

    def __init__(self, console: Console, quiet: bool, engine: str):
        columns = (
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("done {task.fields[done]} running {task.fields[running]} failed {task.fields[failed]} pending {task.fields[pending]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        )
        self.bar = Progress(*columns, console=console, disable=quiet, transient=False)
        self.task = self.bar.add_task(engine, total=0, done=0, running=0, failed=0, pending=0)
        self.total = 0

    def start(self, total: int) -> None:
        self.total = total  # cells to execute; shrinks as cells turn out to be finished already
        self.bar.update(self.task, total=total, pending=total)
        self.bar.start()

    def update(self, done: int, failed: int, running: int, description: str | None = None) -> None:
        finished = done + failed
        running = max(0, min(running, self.total - finished))
        fields = {"total": self.total, "completed": finished, "done": done, "failed": failed, "running": running, "pending": max(0, self.total - finished - running)}
        if description is not None:
            fields["description"] = description
        self.bar.update(self.task, **fields)

    def stop(self) -> None:
        self.bar.stop()


def run_sweep(
    spec: SweepSpec,
    retry_failed: bool = False,
    console: Console | None = None,
    quiet: bool = False,
    engine: str | None = None,
    address: str | None = None,
    resources: str | dict | None = None,
    argv: list[str] | None = None,
) -> SweepSummary:
    """Plan, prepare and execute `spec` on the local or the Ray engine; see the module docstring."""
    from seedbench.config import PLUGIN_ENV
    from seedbench.registry import load_plugins, plugins_to_env
    from seedbench.sweep.plan import plan_cell, resolve_grid
    from seedbench.sweep.runners.dispatch import begin_sweep, forwarded_env, prepare_cell
    from seedbench.sweep.runners.locking import index_lock, index_path, keep_index_open
    from seedbench.sweep.runners.resources import check_local, parse_resources, request_for
    from seedbench.sweep.runners.store_context import check_store_writable, index_database, open_store, project_root
    from seedbench.sweep.status import write_sweep

    engine = engine or spec.engine or ("ray" if address else "local")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if address and engine != "ray":
        raise ConfigError("--ray-address needs --engine ray")
    override = parse_resources(resources if resources is not None else spec.resources)
    console = console or Console(stderr=True)
    # Everything the user typed is checked here, before Ray starts or a folder exists: plugins, every
    # cell's names and values, every dataset the grid needs, the resources, the store.
    mark = time.time()
    plugins = load_plugins(spec.plugins)
    cells = spec.cells()
    placement = {"data_dir": spec.data_dir} if spec.data_dir else {}
    resolved = resolve_grid(cells, placement)
    requests: dict[Any, list[str]] = {}
    for r in resolved:
        requests.setdefault(request_for(r.placement.model_dump(), override), []).append(r.label)
    if engine == "local":
        check_local(requests)
    check_store_writable(spec.store)
    validated = time.time() - mark
    env = {**forwarded_env(), **({PLUGIN_ENV: plugins_to_env(plugins)} if plugins else {})}
    started = time.time()
    summary = SweepSummary(store=Path(), total=len(cells), engine=engine)
    with open_store(spec.store) as directory, contextlib.ExitStack() as stack:
        summary.store = directory
        root = project_root()
        database = index_path(directory, index_database(spec.store), root)
        progress = _Progress(console, quiet, engine)
        stack.callback(progress.stop)
        planned_reused = [0]  # cells found finished when looked up (not part of this run's progress)

        def report(cell, outcome: dict[str, Any]) -> None:
            status = outcome.get("status")
            if status == "failed":
                summary.failed.append((cell.label, outcome.get("error") or "unknown error"))
            elif status == "reused":  # another sweep finished it while this one waited
                summary.reused += 1
            else:
                summary.trained += 1
                summary.diverged += status == "diverged"

        def tick(description: str | None = None) -> None:
            done = summary.trained + summary.reused - planned_reused[0]
            progress.update(done, len(summary.failed), runner.counts()["running"], description)

        if engine == "ray":
            from seedbench.sweep.runners import ray as ray_engine

            with console.status(f"joining Ray at {address}" if address else "starting Ray", spinner="dots") if not quiet else contextlib.nullcontext():
                if ray_engine.connect(address):
                    stack.callback(ray_engine.shutdown)
            ray_engine.warm_workers()
            runner: Any = ray_engine.RayRunner(report)
        else:
            from seedbench.sweep.runners.local import LocalRunner

            runner = LocalRunner(report, on_start=lambda cell: tick(cell.label))
        stack.callback(runner.close)
        summary.timings["connect"] = time.time() - started

        begin_sweep()
        with index_lock(database):
            mark = time.time()
            if engine == "ray":
                ray_engine.check_cluster(requests)
            summary.sweep_file = write_sweep(directory, cells, {}, engine, argv)
            summary.timings["validate"] = validated + time.time() - mark
            # Then cell by cell: look it up, and hand what is pending to the engine at once.
            mark = time.time()
            progress.start(len(cells))
            stack.enter_context(keep_index_open(database))
            folders: dict[str, Path | None] = {}
            last_record = time.time()
            for r in resolved:
                cell = r.cell
                p = plan_cell(r)
                if p.state == "finished" or (p.state == "failed" and not retry_failed):
                    folders[cell.label] = p.directory
                    if p.state == "finished":
                        summary.reused += 1
                        planned_reused[0] += 1
                    else:
                        summary.skipped_failed.append(cell.label)
                    progress.total -= 1
                    continue
                prepared = prepare_cell(p, directory, root, override, env)
                if prepared is None:  # finished by a concurrent sweep since it was looked up
                    folders[cell.label] = p.directory
                    summary.reused += 1
                    continue
                folders[cell.label] = prepared.interface_dir
                runner.submit(prepared)  # the driver keeps no machinable objects for cells in flight
                if runner.poll():
                    tick()
                if time.time() - last_record > 10:  # a long plan keeps `seedbench status` informed
                    write_sweep(directory, cells, folders, engine, argv)
                    last_record = time.time()
            write_sweep(directory, cells, folders, engine, argv)
            summary.timings["plan_prepare"] = time.time() - mark
        mark = time.time()
        runner.run_to_end(tick)
        tick(engine)
        summary.timings["run"] = time.time() - mark
    summary.seconds = time.time() - started
    return summary
