"""Run a sweep: plan the grid against the store, execute what is pending, summarise.

The driver resolves every cell, looks all of them up in the store in one query (plan.plan_cells) and
records the sweep's cell list there (`seedbench status` reads it): for 10,000 cells that takes seconds.
It then prepares pending cells just in time, as the engine can start them: materialising a cell and
its run-record in machinable costs ~15 ms, so 10,000 of them up front would keep the first cell
waiting minutes and hold 10,000 tasks in Ray's queue. Each batch is prepared under the index lock, so
two sweeps on one store never materialise a cell twice. The local engine prepares a cell, trains it
in this process, and moves on; the Ray engine keeps a few tasks per CPU queued ahead of its workers.

The progress bar counts cells: done, running, failed, pending, with an ETA; the summary says what was
trained, reused, diverged or failed, and names the failed cells (their traceback is in the run folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from seedbench.errors import ConfigError
from seedbench.sweep.grid import SweepSpec

ENGINES = ("local", "ray", "slurm")


@dataclass
class SweepSummary:
    store: Path
    total: int = 0
    trained: int = 0
    reused: int = 0
    resumed: int = 0  # trained cells that continued from a checkpoint of an earlier, interrupted run
    diverged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell label, error)
    skipped_failed: list[str] = field(default_factory=list)  # failed earlier, not retried
    engine: str = "local"
    sweep_file: Path | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # connect, plan, prepare (incl. submit), run (the rest)
    packs: list[int] = field(default_factory=list)  # the size of every pack submitted
    folders: dict[str, Path | None] = field(default_factory=dict)  # cell label -> its folder in the store
    slurm: dict[str, Any] | None = None  # the Slurm engine's submissions: arrays, cells, already queued, detached
    stale: list[Any] = field(default_factory=list)  # StaleGroup per method whose finished cells other code made
    stale_policy: str | None = None  # what was done with them: "rerun" (trained again) or "keep" (reused)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped_failed


class _Progress:
    """The live bar: done / running / failed / pending of the cells this run executes, and an ETA."""

    def __init__(self, console: Console, quiet: bool, engine: str):
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("done {task.fields[done]} running {task.fields[running]} failed {task.fields[failed]} pending {task.fields[pending]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
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
        fields = {
            "total": self.total,
            "completed": finished,
            "done": done,
            "failed": failed,
            "running": running,
            "pending": max(0, self.total - finished - running),
        }
        if description is not None:
            fields["description"] = description
        self.bar.update(self.task, **fields)

    def stop(self) -> None:
        self.bar.stop()


def check_pack(pack: int | str | None) -> int | str:
    """--pack K (1 = off) or auto; None means the default, off (docs/engine.md, "Seed packing")."""
    if pack is None or pack == 1 or pack == "1":
        return 1
    if pack == "auto":
        return "auto"
    try:
        value = int(pack)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or str(value) != str(pack).strip():
        raise ConfigError(f"--pack {pack!r}: give a positive integer (1 = no packing) or auto")
    return value


class Packer:
    """Collects prepared cells that differ only in their seeds into packs; everything else goes through at once.

    Whether a group packs is what its method and model declare (seedbench.train.pack_rules.can_pack:
    Method.packable, the model's packable, torch). With `auto` the size is the method's measured one
    (Method.pack_sizes), 1 wherever packing was not measured to pay, and a group that cannot pack
    runs solo; an explicit `--pack K` that a group cannot honour is refused by `check` before anything
    runs, with the method's own reason (Method.pack_note).
    """

    def __init__(self, runner: Any, pack: int | str, engine: str):
        self.runner, self.pack, self.engine = runner, pack, engine
        self.waiting: dict[tuple, list[Any]] = {}
        self.sizes: dict[tuple, int] = {}
        self.packs: list[int] = []

    def check(self, resolved: list[Any]) -> None:
        """Size every group now, so that `--pack K` on cells that cannot pack fails in one line before anything runs."""
        for r in resolved:
            self.size_for(r)

    def size_for(self, resolved: Any) -> int:
        key = resolved.cell.group
        if key not in self.sizes:
            self.sizes[key] = self._size(resolved)
        return self.sizes[key]

    def _size(self, resolved: Any) -> int:
        if self.pack == 1:
            return 1
        from seedbench.train.pack_rules import FIX, auto_pack_size, can_pack

        ok, why = can_pack(resolved.method, resolved.config)
        if not ok:
            if self.pack == "auto":
                return 1
            raise ConfigError(f"--pack {self.pack}: {why}; {FIX}")
        if self.pack == "auto":
            device = "cuda" if resolved.placement.num_gpus > 0 or resolved.placement.device.startswith("cuda") else "cpu"
            return auto_pack_size(resolved.method, resolved.config.model, device)
        return int(self.pack)

    def add(self, resolved: Any, prepared: Any) -> int:
        """Hand a prepared cell over; returns the number of tasks submitted (0 while its pack fills)."""
        size = self.size_for(resolved)
        if size <= 1:
            self.runner.submit(prepared)
            return 1
        key = resolved.cell.group
        members = self.waiting.setdefault(key, [])
        members.append(prepared)
        if len(members) >= size:
            self._submit(self.waiting.pop(key))
            return 1
        return 0

    def flush(self, group: tuple) -> int:
        """Submit what waits of `group` as a smaller pack (its last cells); returns the tasks submitted."""
        members = self.waiting.pop(group, None)
        if not members:
            return 0
        self._submit(members)
        return 1

    def _submit(self, members: list[Any]) -> None:
        if len(members) == 1:
            self.runner.submit(members[0])
            return
        import hashlib

        from seedbench.sweep.runners.dispatch import PreparedPack

        pack_id = hashlib.sha256("".join(sorted(m.job["uuid"] for m in members)).encode()).hexdigest()[:16]
        self.packs.append(len(members))
        self.runner.submit(PreparedPack(members, pack_id))


class Feeder:
    """Prepares the pending cells just in time, as many as the engine asks for, under the index lock.

    A pack counts as one task: the Packer submits it once its K-th member is prepared, and a group's last
    members go as a smaller pack as soon as the group has no more cells to prepare.
    """

    def __init__(self, todo: list[Any], packer: Packer, prepare: Any, lock: Any, on_prepared: Any):
        from collections import Counter, deque

        self.todo = deque(todo)
        self.left = Counter(p.cell.group for p in todo)
        self.packer, self.prepare, self.lock, self.on_prepared = packer, prepare, lock, on_prepared
        self.seconds = 0.0  # spent preparing

    def refill(self, slots: int) -> bool:
        """Prepare and submit up to `slots` more tasks; False once every cell has been handed over."""
        if not self.todo:
            return False
        started = time.time()
        submitted = 0
        with self.lock():
            while self.todo and submitted < max(1, slots):
                planned = self.todo.popleft()
                group = planned.cell.group
                self.left[group] -= 1
                prepared = self.prepare(planned)
                self.on_prepared(planned, prepared)
                planned._interface = None  # machinable's objects are ~40 KiB a cell: not kept for 10,000 cells
                if prepared is not None:
                    submitted += self.packer.add(planned.resolved, prepared)
                if self.left[group] == 0:
                    submitted += self.packer.flush(group)
        self.seconds += time.time() - started
        return bool(self.todo)


def run_sweep(
    spec: SweepSpec,
    retry_failed: bool = False,
    console: Console | None = None,
    quiet: bool = False,
    engine: str | None = None,
    address: str | None = None,
    resources: str | dict | None = None,
    argv: list[str] | None = None,
    pack: int | str | None = None,
    slurm: list[str] | dict | None = None,
    detach: bool = False,
    rerun_stale: bool = False,
    keep_stale: bool = False,
) -> SweepSummary:
    """Plan, prepare and execute `spec` on the local, Ray or Slurm engine; see the module docstring.

    `slurm`: `--slurm key=value` pairs (or a mapping) over the sweep YAML's `slurm:`; `detach`: on
    the Slurm engine, return once every pending cell is submitted (the same sweep run again collects).
    Finished cells whose method's code changed since stop the sweep before anything runs, unless
    `rerun_stale` (train them again) or `keep_stale` (reuse them) says otherwise (runners/provenance.py).
    """
    from seedbench.config import PLUGIN_ENV
    from seedbench.provenance import PROVENANCE_ENV, sweep_provenance
    from seedbench.registry import load_plugins, plugins_to_env
    from seedbench.sweep.plan import plan_cells, resolve_grid
    from seedbench.sweep.runners.dispatch import begin_sweep, forwarded_env, prepare_cell, stop_on_full_disk
    from seedbench.sweep.runners.locking import index_lock, index_path, keep_index_open
    from seedbench.sweep.runners.orphans import reap_left_behind
    from seedbench.sweep.runners.provenance import check_policy, settle_stale
    from seedbench.sweep.runners.resources import check_local, check_local_devices, parse_resources, request_for
    from seedbench.sweep.runners.store_context import check_store_writable, index_database, open_store, project_root, store_dir, store_notes
    from seedbench.sweep.status import write_sweep

    engine = engine or spec.engine or ("ray" if address else "local")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if address and engine != "ray":
        raise ConfigError("--ray-address needs --engine ray")
    if (detach or slurm) and engine != "slurm":
        raise ConfigError(f"{'--detach' if detach else '--slurm'} needs --engine slurm")
    if detach:
        from seedbench.sweep.runners.slurm_background import threshold

        threshold()  # a malformed SEEDBENCH_SLURM_BACKGROUND_OVER is refused before anything is written
    override = parse_resources(resources if resources is not None else spec.resources)
    pack = check_pack(pack if pack is not None else spec.pack)
    policy = check_policy(rerun_stale, keep_stale)
    console = console or Console(stderr=True)
    # Everything the user typed is checked here, before Ray starts or a folder exists: plugins, every
    # cell's names and values, every dataset the grid needs, the resources, the store.
    mark = time.time()
    plugins = load_plugins(spec.plugins)
    cells = spec.cells()
    placement = {"data_dir": spec.data_dir} if spec.data_dir else {}
    resolved = resolve_grid(cells, placement)
    packer = Packer(None, pack, engine)
    packer.check(resolved)
    requests: dict[Any, list[str]] = {}
    for r in resolved:
        requests.setdefault(request_for(r.placement.model_dump(), override), []).append(r.label)
    if engine == "local":
        check_local(requests)
        check_local_devices((r.label, r.placement.device) for r in resolved)
    elif engine == "slurm":  # options, partition, limits and the store's filesystem, checked against the live cluster
        from seedbench.sweep.runners.slurm_options import check_sweep

        slurm_plan = check_sweep(resolved, override, spec.slurm, slurm, spec.store)
    else:  # an unreachable --ray-address fails here in seconds, before the store is opened
        from seedbench.sweep.runners.ray import check_address

        check_address(address or os.environ.get("RAY_ADDRESS") or None)
    check_store_writable(spec.store)
    validated = time.time() - mark
    env = {**forwarded_env(), **({PLUGIN_ENV: plugins_to_env(plugins)} if plugins else {})}
    # the code of every method of the grid and the checkout, once per sweep; workers record and verify it
    code = sweep_provenance(list({(r.method.name, r.config.framework): (r.method, r.config.framework) for r in resolved}.values()))
    env[PROVENANCE_ENV] = json.dumps(code)
    started = time.time()
    summary = SweepSummary(store=Path(), total=len(cells), engine=engine)
    # a full disk anywhere below stops the sweep in one line, the cells in flight recorded as interrupted
    with stop_on_full_disk(store_dir(spec.store)) as guard, open_store(spec.store) as directory, contextlib.ExitStack() as stack:
        summary.store = directory
        for pid, ended in reap_left_behind(directory):  # a driver of this store killed before it could end its Ray
            if ended:
                console.print(f"[yellow]note:[/] ended {ended} Ray process(es) left behind by sweep driver {pid}, which was killed", highlight=False)
        root = project_root()
        database = index_path(directory, index_database(spec.store), root)
        for note in store_notes(database, spec.store):
            console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        progress = _Progress(console, quiet or detach, engine)  # a detached sweep only submits: no bar
        stack.callback(progress.stop)
        planned_reused = [0]  # cells found finished when looked up (not part of this run's progress)

        def report(cell, outcome: dict[str, Any]) -> None:
            status = outcome.get("status")
            if status == "pack":  # a pack reports every member, so progress and the summary count cells
                for member, member_outcome in zip(cell.members, outcome["members"], strict=True):
                    report(member, member_outcome)
                return
            if status == "failed":
                summary.failed.append((cell.label, outcome.get("error") or "unknown error"))
            elif status == "reused":  # another sweep finished it while this one waited
                summary.reused += 1
            else:
                summary.trained += 1
                summary.diverged += status == "diverged"
                summary.resumed += bool(outcome.get("resumed_from_epoch"))

        def tick(description: str | None = None) -> None:
            done = summary.trained + summary.reused - planned_reused[0]
            progress.update(done, len(summary.failed), runner.counts()["running"], description)

        if engine == "slurm":
            from seedbench.sweep.runners.slurm import SlurmRunner
            from seedbench.sweep.status import sweep_id

            for warning in slurm_plan.warnings:
                console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
            runner: Any = SlurmRunner(report, directory, sweep_id(cells), slurm_plan.options, slurm_plan.info, detach=detach)
        elif engine == "ray":
            from seedbench.sweep.runners import ray as ray_engine

            with (
                console.status(f"joining Ray at {address}" if address else "starting Ray", spinner="dots") if not quiet else contextlib.nullcontext()
            ):
                if ray_engine.connect(address, store=directory):
                    stack.callback(ray_engine.shutdown)
            ray_engine.warm_workers()
            runner = ray_engine.RayRunner(report)
        else:
            from seedbench.sweep.runners.local import LocalRunner

            runner = LocalRunner(report, on_start=lambda cell: tick(cell.label), context=lambda: open_store(spec.store))
        stack.callback(runner.close)
        guard.runner = runner
        packer.runner = runner
        summary.timings["connect"] = time.time() - started

        begin_sweep()
        stack.enter_context(keep_index_open(database))
        with index_lock(database):
            mark = time.time()
            if engine == "ray":
                ray_engine.check_cluster(requests)
            if engine == "slurm":  # cells earlier submissions still hold in Slurm, and jobs that ended unwatched
                runner.reconcile()
            summary.timings["validate"] = validated + time.time() - mark
            # Every cell looked up at once; the sweep's list goes into the store before anything runs.
            mark = time.time()
            folders: dict[str, Path | None] = {}
            todo = []
            held = getattr(runner, "planned", None)  # the Slurm engine: True for a cell a live job of an earlier run holds
            planned = plan_cells(resolved, database, store=directory)
            summary.stale, summary.stale_policy = settle_stale(planned, policy, directory), policy  # or stop here, in one line
            for p in planned:
                folders[p.cell.label] = p.path
                if held is not None and held(p):
                    continue
                if p.state == "finished":
                    summary.reused += 1
                    planned_reused[0] += 1
                elif p.state == "failed" and not retry_failed:
                    summary.skipped_failed.append(p.cell.label)
                else:
                    todo.append(p)
            del planned  # the feeder holds what is pending; the rest need not stay in memory
            summary.sweep_file = write_sweep(directory, cells, folders, engine, argv)
            summary.timings["plan"] = time.time() - mark
        if engine == "slurm" and detach and argv is not None and todo:
            from seedbench.sweep.runners.slurm_background import hand_off, start_submitter

            if hand_off(len(todo)):  # preparing this many cells takes minutes: a background copy does it
                summary.slurm = runner.handed_off(start_submitter(directory, runner.sweep, argv, len(todo)))
                summary.folders = folders
                summary.seconds = time.time() - started
                return summary
        progress.start(len(todo) + getattr(runner, "adopted_cells", 0))
        listed = {"at": time.time(), "cost": 0.0, "dirty": False}

        def prepared_one(planned: Any, prepared: Any) -> None:
            listed["dirty"] = True
            if prepared is None:  # finished by a concurrent sweep since it was looked up
                summary.reused += 1
                progress.total -= 1
                folders[planned.cell.label] = planned.directory
                return
            folders[planned.cell.label] = prepared.interface_dir

        def ticked(description: str | None = None) -> None:
            """Progress, and the sweep file: `seedbench status` finds a cell once that file names its folder.

            It is rewritten when cells were prepared, at most once a second, and less often where a
            rewrite is slow (a 10,000-cell list), so that it never takes more than ~5% of the driver's time.
            """
            tick(description)
            now = time.time()
            if listed["dirty"] and now - listed["at"] >= max(1.0, 20 * listed["cost"]):
                write_sweep(directory, cells, folders, engine, argv)
                listed.update(at=time.time(), cost=time.time() - now, dirty=False)

        feeder = Feeder(
            todo,
            packer,
            lambda p: prepare_cell(p, directory, root, override, env, ahead=engine != "slurm"),
            lambda: index_lock(database),
            prepared_one,
        )
        del todo  # the feeder's queue holds the pending cells; each is let go once prepared
        mark = time.time()
        runner.run_to_end(ticked, feeder.refill)
        tick(engine)
        summary.packs = packer.packs
        summary.folders = folders
        if engine == "slurm":
            summary.slurm = {
                "arrays": runner.arrays,
                "submitted": runner.submitted_cells,
                "adopted": runner.adopted_cells,
                "already_queued": runner.already_queued,
                "detached": detach,
                "folder": str(runner.folder) if runner.folder else None,
                "submit_seconds": runner.submit_seconds,
            }
        write_sweep(directory, cells, folders, engine, argv)
        summary.timings["prepare"] = feeder.seconds
        summary.timings["run"] = time.time() - mark - feeder.seconds
    summary.seconds = time.time() - started
    if engine == "slurm":
        from seedbench.sweep.runners.slurm_background import finish_submitter

        finish_submitter(summary)  # in a background submitter only: what it did, for `seedbench status`
    return summary


@dataclass
class DryRun:
    """What a sweep would do, without doing it."""

    total: int
    new: int = 0
    reused: int = 0
    failed_before: int = 0
    retried: int = 0
    packs: list[int] = field(default_factory=list)
    solo: int = 0
    seconds: float = 0.0
    stale: list[Any] = field(default_factory=list)  # StaleGroup per method: finished cells made by other code
    stale_policy: str | None = None  # "rerun" (counted new), "keep" (counted reused), None (the sweep would stop)

    def describe(self) -> str:
        from seedbench.sweep.runners.provenance import FIX

        packs = f"{len(self.packs)} packs ({sum(self.packs)} cells) and {self.solo} solo cells" if self.packs else f"{self.solo} solo cells"
        cells = sum(g.cells for g in self.stale)
        what = {"rerun": "to redo (--rerun-stale)", "keep": "kept as reused (--keep-stale)"}.get(self.stale_policy or "", "the sweep stops on them")
        stale = f", {cells} stale, {what}: {', '.join(g.describe() for g in self.stale)}" if self.stale else ""
        return (
            f"{self.total} cells: {self.new} new, {self.reused} finished (reused), {self.failed_before} failed before"
            + (f" ({self.retried} to retry)" if self.retried else " (skipped; --retry-failed reruns them)" if self.failed_before else "")
            + stale
            + f"; would run {packs}"
            + (f" ({FIX})" if self.stale and self.stale_policy is None else "")
            + f"; planned in {self.seconds:.1f} s, nothing run or written"
        )


def dry_run(
    spec: SweepSpec,
    retry_failed: bool = False,
    resources: str | dict | None = None,
    pack: int | str | None = None,
    rerun_stale: bool = False,
    keep_stale: bool = False,
) -> DryRun:
    """Validate the grid and look every cell up in the store; run and write nothing (stale cells are counted, not settled)."""
    from seedbench.registry import load_plugins
    from seedbench.sweep.plan import PlannedCell, plan_cells, resolve_grid
    from seedbench.sweep.runners.locking import index_path
    from seedbench.sweep.runners.provenance import check_policy, stale_groups
    from seedbench.sweep.runners.resources import parse_resources
    from seedbench.sweep.runners.store_context import index_database, open_project, project_root, store_dir

    started = time.time()
    parse_resources(resources if resources is not None else spec.resources)
    pack = check_pack(pack if pack is not None else spec.pack)
    policy = check_policy(rerun_stale, keep_stale)
    load_plugins(spec.plugins)
    cells = spec.cells()
    resolved = resolve_grid(cells, {"data_dir": spec.data_dir} if spec.data_dir else {})
    result = DryRun(total=len(cells), stale_policy=policy)
    packer = Packer(None, pack, spec.engine or "local")
    packer.check(resolved)
    pending: dict[tuple, int] = {}
    directory = store_dir(spec.store)
    if directory.is_dir():  # machinable's project only (its storage and index contexts would write)
        with open_project():
            planned = plan_cells(resolved, index_path(directory, index_database(spec.store), project_root()), repair=False, store=directory)
    else:
        planned = [PlannedCell(r, "pending") for r in resolved]
    result.stale = stale_groups(planned)
    for p in planned:
        r, state = p.resolved, p.state
        if state == "stale" and policy != "rerun":  # kept: reused; no policy: the sweep would stop on it
            result.reused += policy == "keep"
            continue
        if state == "finished":
            result.reused += 1
            continue
        if state == "failed":
            result.failed_before += 1
            if not retry_failed:
                continue
            result.retried += 1
        else:
            result.new += 1
        size = packer.size_for(r)
        if size <= 1:
            result.solo += 1
        else:
            pending[r.cell.group] = pending.get(r.cell.group, 0) + 1
    for key, count in pending.items():
        size = packer.sizes[key]
        full, rest = divmod(count, size)
        result.packs += [size] * full + ([rest] if rest > 1 else [])
        result.solo += 1 if rest == 1 else 0
    result.seconds = time.time() - started
    return result
