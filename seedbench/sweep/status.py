"""Each sweep's list of cells, kept in the store, and the per-sweep status counts built from it.

`<store>/sweeps/<id>.json` records a grid's cells and, once the driver has materialised them, each
cell's folder (relative to the store). `seedbench status` reads these files and the cells' run.json:
it needs neither the index nor machinable, so it also works on a cluster node that only mounts the
shared store. The id is a hash of the grid, so running the same grid again updates the same file.

A finished cell whose method's code changed since it was made (its record's code files hash
differently now; seedbench/sweep/runners/provenance.py) is still counted finished, and is also
named as stale, per method with the files that changed: the next sweep stops on it.

Sweeps on the Slurm engine also count cells `queued` (submitted, waiting in Slurm) and `preempted`
(requeued after a preemption or time-out signal, waiting to restart), from the store's records of
their arrays and from one squeue call; where Slurm cannot be asked (a machine without its clients),
from the store alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedbench.record import CACHED_MARKER, RUN_FILE
from seedbench.sweep.runners.dispatch import read_record, write_json
from seedbench.sweep.runners.locking import cell_is_locked, cell_lock_path

SWEEPS_DIR = "sweeps"
STATES = ("finished", "running", "failed", "diverged", "pending")
SLURM_STATES = ("queued", "preempted")  # counted for sweeps with Slurm submissions


def sweep_id(cells: list[Any]) -> str:
    """A stable id for a grid: the hash of its cells' (module, version), order-independent."""
    keys = sorted(json.dumps(c.key, sort_keys=True, default=str) for c in cells)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def write_sweep(store: Path, cells: list[Any], directories: dict[str, Path | None], engine: str, argv: list[str] | None = None) -> Path:
    """Record (or update) the sweep's cell list; directories maps a cell label to its folder, if known."""
    ident = sweep_id(cells)
    path = Path(store) / SWEEPS_DIR / f"{ident}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = {}
    known = {c.get("label"): c.get("dir") for c in previous.get("cells", [])}
    rows = []
    for cell in cells:
        directory = directories.get(cell.label)
        rel = os.path.relpath(directory, store) if directory is not None else known.get(cell.label)
        rows.append({"label": cell.label, "method": cell.method, "model": cell.model, "dataset": cell.dataset, "seed": cell.seed, "dir": rel})
    now = time.time()
    record = {
        "id": ident,
        "created_at": previous.get("created_at", now),
        "updated_at": now,
        "engine": engine,
        "argv": argv if argv is not None else previous.get("argv"),
        "methods": sorted({c.method for c in cells}),
        "models": sorted({c.model for c in cells}),
        "datasets": sorted({c.dataset for c in cells}),
        "seeds": sorted({c.seed for c in cells}),
        "cells": rows,
    }
    write_json(path, record)
    return path


@dataclass
class SweepStatus:
    id: str
    path: Path
    created_at: float
    updated_at: float
    engine: str | None
    summary: str
    counts: dict[str, int] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)  # label, state, dir
    stale: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> {"cells": n, "reasons": [...]}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _heartbeat_fresh(interface_dir: Path, window: float) -> bool:
    """machinable's heartbeat (rewritten every 15 s) in the newest run-record below the cell's folder."""
    newest = 0.0
    for marker in interface_dir.glob("*/*/heartbeat_at"):
        try:
            newest = max(newest, marker.stat().st_mtime)
        except OSError:
            continue
    return newest > 0 and time.time() - newest < window


def cell_state(store: Path, rel_dir: str | None) -> str:
    return cell_record_state(store, rel_dir)[0]


def cell_record_state(store: Path, rel_dir: str | None) -> tuple[str, dict[str, Any]]:
    """A cell's state, and the record it was judged from ({} where there is none)."""
    if not rel_dir:
        return "pending", {}
    directory = Path(store) / rel_dir
    record = read_record(directory)
    status = record.get("status")
    if status in ("finished", "diverged"):
        # machinable marks the cell done only after the trial returned: a record that says finished
        # without that marker was cut off in between, and the next sweep redoes it (as plan.plan_cells does)
        return (status if (directory / CACHED_MARKER).exists() else "pending"), record
    if status == "failed":
        return status, record
    if status == "running":
        uuid = _uuid_of(directory)
        if uuid and cell_lock_path(store, uuid).exists():  # trained by a seedbench engine: its lock is the truth
            return ("running" if cell_is_locked(store, uuid) else "pending"), record
        if _heartbeat_fresh(directory, _window()):  # else machinable's heartbeat (stale after ~90 s)
            return "running", record
    return "pending", record  # never started, or interrupted (rerun the sweep to redo it)


class _Staleness:
    """Judges finished records against their code files as they are now, without loading any method or plugin.

    A record names the files of its method's code and their sha256 (seedbench/provenance.py): the
    cell is stale when those files hash differently now, unless the store keeps that version
    (`--keep-stale`). One judgement per (method, framework, code version).
    """

    def __init__(self, store: Path):
        from seedbench.sweep.runners.provenance import read_kept

        self.kept = read_kept(store)
        self.memo: dict[tuple, str | None] = {}

    def reason(self, record: dict[str, Any]) -> str | None:
        from seedbench.provenance import current_files, files_from_record, version_of
        from seedbench.sweep.runners.provenance import NO_VERSION, kept_versions, stale_reason

        config = record.get("config") if isinstance(record.get("config"), dict) else {}
        framework = record.get("framework") or config.get("framework") or "torch"
        code = record.get("code_sha256") or NO_VERSION
        key = (record.get("method"), framework, code)
        if key not in self.memo:
            then = files_from_record(record.get("code_files"))
            name = f"{key[0]}/{framework}"
            if not then:  # made before records carried a code version: stale unless such cells were kept
                kept = any(k.get("from") in (None, NO_VERSION) and f"{k.get('method')}/{k.get('framework')}" == name for k in self.kept)
                self.memo[key] = None if kept else stale_reason({}, {})
            else:
                now = current_files(then)
                current = version_of(now)
                fine = current == code or code in kept_versions(self.kept, name, current)
                self.memo[key] = None if fine else stale_reason(then, now)
        return self.memo[key]


def _uuid_of(directory: Path) -> str | None:
    try:
        return json.loads((directory / "id.json").read_text()).get("uuid") or json.loads((directory / "model.json").read_text()).get("uuid")
    except (OSError, ValueError, AttributeError):
        return None


def _window() -> float:
    try:
        return float(os.environ.get("MACHINABLE_HEARTBEAT_WINDOW", 90)) or 90.0
    except ValueError:
        return 90.0


def _slurm_holds(store: Path, warnings: list[str] | None) -> dict[str, str]:
    """Cell folder (relative) -> queued / preempted / running / ended, for cells of arrays not yet settled."""
    from seedbench.sweep.runners.slurm_queue import SUBMIT_GRACE, query_queue, read_arrays, requeues

    records = read_arrays(store)
    if not records:
        return {}
    latest: dict[str, tuple[Any, int]] = {}
    for record in records:
        for index, cells in enumerate(record.tasks):
            for cell in cells:
                latest[cell["dir"]] = (record, index)
    view = query_queue({(r.array, r.name) for r in records})
    if not view.ok and warnings is not None:
        warnings.append(f"could not ask Slurm ({view.error}); queued, preempted and running cells are counted from the store alone")
    now = time.time()
    holds = {}
    for rel, (record, index) in latest.items():
        state = view.of(record.jobs[index]) if view.ok else None
        if view.ok and state is None and now - record.submitted_at > SUBMIT_GRACE:
            holds[rel] = "ended"
        elif state is not None and not state.live:
            holds[rel] = "ended"
        elif state is not None and not state.queued:
            holds[rel] = "running"
        else:
            holds[rel] = "preempted" if requeues(Path(store) / rel).get("count") else "queued"
    return holds


def slurm_cell_state(store: Path, rel_dir: str | None, hold: str | None, state: str | None = None) -> str:
    """A Slurm sweep's cell: what its folder says once decided (`state`, if already read), else what Slurm (or the store) says of its job."""
    state = state if state is not None else cell_state(store, rel_dir)
    if state != "pending" or hold is None:
        return state
    if hold == "ended":  # its job ended without finishing it: the next run of the sweep records it failed
        return "failed"
    uuid = _uuid_of(Path(store) / rel_dir) if rel_dir else None
    if uuid and cell_is_locked(store, uuid):  # a task trains it right now
        return "running"
    # not started yet: waiting in Slurm, or in a running task that trains its cells one after another
    return "preempted" if hold == "preempted" else "queued"


def sweep_status(store: Path, warnings: list[str] | None = None) -> list[SweepStatus]:
    """Every sweep recorded in `store`; a sweep file that cannot be read is named in `warnings` and skipped."""
    out = []
    holds: dict[str, str] | None = None
    staleness = _Staleness(Path(store))
    for path in sorted((Path(store) / SWEEPS_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
                raise ValueError("not a sweep record")
        except (OSError, ValueError) as exc:
            if warnings is not None:
                warnings.append(f"{path}: unreadable sweep file ({type(exc).__name__}); it is skipped - rerun its sweep to rewrite it")
            continue
        slurm = data.get("engine") == "slurm"
        if slurm and holds is None:
            holds = _slurm_holds(Path(store), warnings)
        counts = dict.fromkeys(STATES + (SLURM_STATES if slurm else ()), 0)
        cells = []
        stale: dict[str, dict[str, Any]] = {}
        for row in data.get("cells", []):
            rel = row.get("dir")
            state, record = cell_record_state(Path(store), rel)
            state = slurm_cell_state(Path(store), rel, (holds or {}).get(rel), state) if slurm else state
            counts[state] += 1
            cells.append({"label": row.get("label"), "state": state, "dir": row.get("dir")})
            why = staleness.reason(record) if state in ("finished", "diverged") else None
            if why is not None:
                group = stale.setdefault(str(record.get("method") or row.get("method")), {"cells": 0, "reasons": []})
                group["cells"] += 1
                group["reasons"] += [why] if why not in group["reasons"] else []
                cells[-1]["stale"] = why
        summary = (
            f"{','.join(data.get('methods', []))} x {','.join(data.get('models', []))} x "
            f"{','.join(data.get('datasets', []))} x {len(data.get('seeds', []))} seeds"
        )
        out.append(
            SweepStatus(
                data.get("id", path.stem),
                path,
                data.get("created_at", 0.0),
                data.get("updated_at", 0.0),
                data.get("engine"),
                summary,
                counts,
                cells,
                stale,
            )
        )
    out.sort(key=lambda s: s.updated_at)
    return out


__all__ = ["RUN_FILE", "SLURM_STATES", "STATES", "SweepStatus", "cell_state", "sweep_id", "sweep_status", "write_sweep"]
