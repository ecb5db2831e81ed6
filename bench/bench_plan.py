"""Planning cost: the one-component layout (components/cell.py, the config as one JSON string) against
per-method components (components/<method>.py, the config as fields), side by side in one run.

    plan          resolve and validate --cells cells (the same code for both layouts), then look every
                  one up in the store's index (CellIndex: one query, machinable's identity hash per cell)
                  and judge the stored folders; against an empty store and against a store whose index
                  holds every one of the cells, finished (rows cloned from one real finished cell per
                  method, so that the 10,000 look-ups each find a row and read a record, and the
                  stale-code check passes them); the layouts alternate,
                  --rounds times, and the fastest plan of each counts. Target: <= 2 s.
    prepare       what the engine's driver does per cell just before it runs it: build the cell's
                  machinable interface, materialise it and prepare its run-record (`prepare_cell`:
                  `Execution.prepare_dispatch`), under the index lock, in a fresh store per layout;
                  blocks of cells alternate between the layouts so that load on the machine hits
                  both alike; medians per cell. Target: new <= old, and <= 19.8 ms.
    interface     the interface-building part of `prepare` alone, and what machinable's own config
                  composition (omegaconf) would cost for the per-method config of ~35 flat fields,
                  which the driver skips (seedbench/sweep/component.py).

Run from the project root (about a minute on 2 cores):

    .venv/bin/python bench/bench_plan.py [--cells 10000] [--prepare 200] [--block 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# -- the one-component layout's planner, as it was: identity of {method, params as canonical JSON} ----------


class LegacyIndex:
    """plan.CellIndex as it was for components/cell.py: one module, identity over the JSON string."""

    def __init__(self, example: Any, database: Path | None, store: Path | None = None):
        from machinable import Project
        from machinable.config import identity_exclude
        from machinable.utils import path_to_uri

        from seedbench.store.migrate import LEGACY_MODULE, legacy_interface
        from seedbench.sweep.runners.store_context import moved_from, moved_uri, read_index

        interface = legacy_interface(example.method.name, example.params)
        self.module = LEGACY_MODULE
        self.default = interface.config_layers().default
        self.exclude = identity_exclude(type(interface).Config)
        self.rows: dict[str, tuple[str, str]] = {}
        if database is None or not database.is_file():
            return
        project = path_to_uri(os.path.abspath(Project.get().config.directory))
        with contextlib.closing(read_index(database)) as connection:
            rows = connection.execute(
                """SELECT c.identity_key, c.record_id, COALESCE(c.local_uri, c.storage_uri) FROM 'index' c
                JOIN 'index' p ON c.parent_id = p.record_id
                WHERE p.kind = 'Project' AND p.storage_uri = ? AND c.module = ? AND c.predicate_key = ? AND c.hidden = 0
                ORDER BY c.created_at_ns""",
                (project, self.module, interface.predicate_key),
            ).fetchall()
        old = moved_from(database, store) if store is not None else None
        for identity, record_id, uri in rows:
            self.rows.setdefault(identity, (record_id, moved_uri(uri, old, store) if old is not None else uri))

    def identity(self, resolved: Any) -> str:
        from machinable.config import canonical_identity_key
        from machinable.utils import sanitize_filename

        from seedbench.store.migrate import legacy_version

        return sanitize_filename(
            canonical_identity_key(self.module, legacy_version(resolved.method.name, resolved.params)[0], self.default, self.exclude), 128
        )

    def entry(self, resolved: Any) -> tuple[str, Path] | None:
        from machinable.utils import uri_to_path

        row = self.rows.get(self.identity(resolved))
        return (row[0], Path(uri_to_path(row[1]))) if row is not None else None


def plan_legacy(resolved: list[Any], database: Path | None, store: Path) -> list[Any]:
    """plan.plan_cells with the legacy look-up: everything else (states, the stale-code check) is today's."""
    from seedbench.sweep.plan import PlannedCell, _stored_state
    from seedbench.sweep.runners.provenance import StaleCheck

    index = LegacyIndex(resolved[0], database, store)
    check = StaleCheck(store)
    out = []
    for r in resolved:
        entry = index.entry(r)
        out.append(PlannedCell(r, "pending") if entry is None else check.judge(_stored_state(r, entry[0], entry[1], repair=False)))
    return out


def plan_new(resolved: list[Any], database: Path | None, store: Path) -> list[Any]:
    from seedbench.sweep.plan import plan_cells

    return plan_cells(resolved, database, repair=False, store=store)


# -- stores -----------------------------------------------------------------------------------------------


def grid(cells: int, store: Path | None = None) -> Any:
    from seedbench.sweep.grid import SweepSpec

    half = cells // 2
    return SweepSpec(
        methods=["sgd", "rbd"],
        models=["fc"],
        datasets=["digits"],
        seeds=list(range(half)),
        overrides={"epochs": 1, "limit_train": 64, "val_size": 32},
        store=str(store) if store else None,
    )


def legacy_planned(resolved: Any) -> Any:
    from seedbench.store.migrate import legacy_interface
    from seedbench.sweep.plan import PlannedCell

    return PlannedCell(resolved, "pending", _interface=legacy_interface(resolved.method.name, resolved.params))


def fill_store(store: Path, resolved: list[Any], layout: str) -> int:
    """Train one cell per method of the layout for real, then clone its index row for every other cell of that method."""
    from seedbench.sweep.plan import CellIndex, PlannedCell
    from seedbench.sweep.runners.dispatch import execute_cell, prepare_cell
    from seedbench.sweep.runners.locking import index_lock, index_path
    from seedbench.sweep.runners.store_context import index_database, open_store, project_root

    firsts = list({r.method.name: r for r in reversed(resolved)}.values())
    with open_store(store) as directory:
        database = index_path(directory, index_database(store), project_root())
        with index_lock(database):
            jobs = [
                prepare_cell(legacy_planned(r) if layout == "old" else PlannedCell(r, "pending"), directory, project_root(), env={}).job
                for r in firsts
            ]
        for job in jobs:
            if execute_cell(job, wait_if_busy=True)["status"] != "finished":
                raise SystemExit(f"the {layout} layout's first {job['method']} cell did not finish; see {job['interface_dir']}")
        index = LegacyIndex(firsts[0], None) if layout == "old" else CellIndex(resolved, None)
        identities = {id(r): index.identity(r) for r in resolved}
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        columns = [row[1] for row in db.execute("PRAGMA table_info('index')")]
        templates = {}
        for first in firsts:
            (row,) = db.execute("SELECT * FROM 'index' WHERE identity_key = ?", (identities[id(first)],)).fetchall()
            templates[first.method.name] = dict(zip(columns, row, strict=True))
        clones = []
        for n, r in enumerate(resolved):
            template = templates[r.method.name]
            if identities[id(r)] != template["identity_key"]:
                clones.append(
                    {
                        **template,
                        "record_id": f"bench{layout}{n:07d}",
                        "identity_key": identities[id(r)],
                        "created_at_ns": template["created_at_ns"] + n + 1,
                    }
                )
        marks = ",".join("?" * len(columns))
        db.executemany(f"INSERT INTO 'index' ({','.join(columns)}) VALUES ({marks})", [[c[k] for k in columns] for c in clones])
    return len(identities)


def time_plan(cells: int, store: Path, layout: str) -> dict[str, float]:
    from seedbench.sweep.plan import resolve_grid
    from seedbench.sweep.runners.locking import index_path
    from seedbench.sweep.runners.store_context import index_database, open_project, project_root

    spec = grid(cells, store)
    started = time.perf_counter()
    resolved = resolve_grid(spec.cells())
    validated = time.perf_counter()
    with open_project():
        database = index_path(store, index_database(str(store)), project_root())
        planned = plan_legacy(resolved, database, store) if layout == "old" else plan_new(resolved, database, store)
    done = time.perf_counter()
    finished = sum(p.state == "finished" for p in planned)
    return {"validate_s": validated - started, "look_up_s": done - validated, "plan_s": done - started, "finished": finished}


def time_prepare(stores: dict[str, Path], count: int, block: int) -> dict[str, dict[str, float]]:
    """Per-cell prepare time per layout, blocks alternating; each layout in its own fresh store."""
    from seedbench.sweep.plan import PlannedCell, build_interface, resolve_grid
    from seedbench.sweep.runners.dispatch import prepare_cell
    from seedbench.sweep.runners.locking import index_lock, index_path, keep_index_open
    from seedbench.sweep.runners.store_context import index_database, open_store, project_root

    resolved = resolve_grid(grid(2 * (count + 2 * block)).cells())
    times: dict[str, list[float]] = {"old": [], "new": []}
    builds: dict[str, list[float]] = {"old": [], "new": []}
    cursor = {"old": 0, "new": 0}

    def run_block(layout: str, n: int, record: bool) -> None:
        store = stores[layout]
        with open_store(store) as directory:
            database = index_path(directory, index_database(str(store)), project_root())
            with keep_index_open(database), index_lock(database):
                for _ in range(n):
                    r = resolved[cursor[layout]]
                    cursor[layout] += 1
                    t0 = time.perf_counter()
                    planned = legacy_planned(r) if layout == "old" else PlannedCell(r, "pending", _interface=build_interface(r))
                    t1 = time.perf_counter()
                    prepare_cell(planned, directory, project_root(), env={})
                    t2 = time.perf_counter()
                    if record:
                        times[layout].append(t2 - t0)
                        builds[layout].append(t1 - t0)

    for layout in ("old", "new"):  # warm up: project root, manifest, first imports
        run_block(layout, block, record=False)
    for _ in range(max(1, count // block)):
        for layout in ("old", "new"):
            run_block(layout, block, record=True)
    return {
        layout: {
            "prepare_ms": 1e3 * statistics.median(times[layout]),
            "interface_ms": 1e3 * statistics.median(builds[layout]),
            "n": len(times[layout]),
        }
        for layout in ("old", "new")
    }


def time_composition(count: int) -> dict[str, float]:
    """Interface building alone: the old JSON string, the new fields composed by machinable, the new fields filled."""
    from machinable import get

    from seedbench.store.migrate import legacy_interface
    from seedbench.sweep.plan import build_interface, resolve_grid
    from seedbench.sweep.runners.store_context import open_project

    resolved = resolve_grid(grid(count).cells())
    ways = {
        "old: {method, params as JSON}, machinable composes": lambda r: legacy_interface(r.method.name, r.params).config_layers(),
        "new: ~35 fields, machinable composes (omegaconf)": lambda r: get.new(r.module, r.version).config_layers(),
        "new: ~35 fields, filled by the driver (used)": lambda r: build_interface(r).config_layers(),
    }
    out: dict[str, list[float]] = {name: [] for name in ways}
    with open_project():
        for _ in range(3):  # interleaved rounds
            for name, way in ways.items():
                for r in resolved:
                    t = time.perf_counter()
                    way(r)
                    out[name].append(time.perf_counter() - t)
    return {name: 1e3 * statistics.median(values) for name, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=10_000, help="cells planned (default 10000)")
    parser.add_argument("--prepare", type=int, default=200, help="cells prepared per layout (default 200)")
    parser.add_argument("--block", type=int, default=20, help="cells per alternating block (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="plans per layout and store, alternating; the fastest counts (default 3)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results: dict[str, Any] = {"cells": args.cells, "load_at_start": os.getloadavg()[0]}
    work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    try:
        from seedbench.sweep.plan import resolve_grid

        resolved = resolve_grid(grid(args.cells).cells())
        for layout in ("old", "new"):
            fill_store(work / f"full-{layout}", resolved, layout)
        for layout in ("old", "new"):  # warm up: first imports, the methods' code versions
            time_plan(args.cells, work / f"empty-{layout}", layout)
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.rounds):  # the layouts alternate, so that load on the machine hits both alike
            for store in ("empty", "full"):
                for layout in ("old", "new"):
                    runs.setdefault(f"{layout} {store}", []).append(time_plan(args.cells, work / f"{store}-{layout}", layout))
        plan = {key: min(values, key=lambda v: v["plan_s"]) for key, values in runs.items()}
        results["plan"] = plan
        print(f"plan {args.cells} cells (validate + look up, fastest of {args.rounds}; load {results['load_at_start']:.1f} at start)")
        for store in ("empty", "full"):
            old, new = plan[f"old {store}"], plan[f"new {store}"]
            print(
                f"  {store:5} store: old {old['plan_s']:.2f} s (look-up {old['look_up_s']:.2f} s, {old['finished']} finished), "
                f"new {new['plan_s']:.2f} s (look-up {new['look_up_s']:.2f} s, {new['finished']} finished); new/old {new['plan_s'] / old['plan_s']:.2f}"
            )
        prepared = time_prepare({"old": work / "prep-old", "new": work / "prep-new"}, args.prepare, args.block)
        results["prepare"] = prepared
        old, new = prepared["old"], prepared["new"]
        print(f"prepare one cell (median of {new['n']} per layout, alternating blocks of {args.block})")
        print(
            f"  old {old['prepare_ms']:.1f} ms (interface {old['interface_ms']:.1f} ms), new {new['prepare_ms']:.1f} ms (interface {new['interface_ms']:.1f} ms)"
        )
        print(f"  new/old {new['prepare_ms'] / old['prepare_ms']:.2f}; target: new <= old and <= 19.8 ms")
        composition = time_composition(min(args.prepare, 200))
        results["interface"] = composition
        print("build one interface (median)")
        for name, ms in composition.items():
            print(f"  {name}: {ms:.2f} ms")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
