"""`seedbench store export` / `seedbench store import`: move finished cells between stores, identity intact.

The file is gzip-compressed JSON Lines: a header line, then one line per cell holding what a store
needs to file it again as its method's machinable component and to answer every query about it:

    {"format": "seedbench-cells", "version": 1, "seedbench": "...", "cells": N}
    {"module": "components.rbd", "method": "rbd", "identity": "<machinable identity key>",
     "presets": ["table1", "hadamard"], "config": {...the resolved config...},
     "run": {...run.json...}, "epochs": [{...epochs.jsonl row...}, ...]}

Only cells that ended (finished or diverged, with machinable's `cached` marker) are exported; running,
failed and half-written cells are counted and left out. Importing files each cell through the same
planner a sweep uses (seedbench.sweep.plan), so a later sweep of the same science finds and reuses it:

- the cell's identity is computed here from its module and config and must equal the exported one
  (a store exported by a checkout whose defaults differ is refused, not silently re-keyed);
- a cell the store already holds with the same result is not stored again; one it holds with a
  different result (same identity, other numbers) is a conflict and refuses the whole import;
- everything is checked before anything is written: a bad file, an unknown method, a config today's
  class refuses, an identity mismatch or a conflict change nothing in the store.

What counts as "the result" (compared for conflicts): run.json's outcome (status, reason, epochs,
metrics, lr, D) and every epoch row without its timings; where and how fast it ran is provenance.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedbench.errors import StoreError

FORMAT = "seedbench-cells"
VERSION = 1
COMPONENT_BASE = "seedbench.sweep.component"
CHECKPOINT_FILE = "checkpoint.pt"

# run.json keys that say what the cell's training gave (compared for conflicts); the rest is provenance
OUTCOME_KEYS = (
    "method",
    "status",
    "reason",
    "epochs_completed",
    "lr",
    "D",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "best_val_acc",
    "best_epoch",
    "val_acc_last10",
    "test_loss",
    "test_acc",
)
EPOCH_TIMING_KEYS = frozenset({"seconds", "images_per_s"})


# -- export -----------------------------------------------------------------------------------------


@dataclass
class Exported:
    path: Path
    cells: int = 0
    left_out: dict[str, int] = field(default_factory=dict)  # why -> how many

    def describe(self) -> str:
        rest = ", ".join(f"{n} {why}" for why, n in sorted(self.left_out.items()))
        return f"exported {self.cells} cells to {self.path} ({self.path.stat().st_size:,} bytes)" + (f"; left out: {rest}" if rest else "")


def _json_value(value: Any) -> Any:
    """NaN/inf as the strings the store writes (JSON has no NaN), so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _dumps(value: Any, canonical: bool = False) -> str:
    """One line of strict JSON; `canonical`: keys sorted, for comparing results."""
    return json.dumps(_json_value(value), sort_keys=canonical, separators=(",", ":"), allow_nan=False)


def _stored_cells(store: Path) -> list[tuple[str, str, Path]]:
    """(module, identity, folder) of every method-component record in the store's index; reads only."""
    import sqlite3

    from machinable.utils import uri_to_path

    from seedbench.sweep.runners.store_context import moved_from, moved_uri, read_index

    database = store / ".machinable.sqlite"
    if os.environ.get("MACHINABLE_INDEX"):
        database = Path(os.environ["MACHINABLE_INDEX"])
    if not database.is_file():
        raise StoreError(f"store {store}: no seedbench store there (no index database); pass --store with the folder a sweep wrote")
    old = moved_from(database, store)
    with contextlib.closing(read_index(database)) as db:
        try:
            rows = db.execute(
                """SELECT module, identity_key, COALESCE(local_uri, storage_uri) FROM 'index'
                WHERE kind = 'Interface' AND hidden = 0 AND inherits_json LIKE ? ORDER BY created_at_ns""",
                (f'%"{COMPONENT_BASE}"%',),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store {store}: its index cannot be read ({exc}); is it a seedbench store?") from None
    return [(module, identity, Path(uri_to_path(moved_uri(uri, old, store) if old is not None else uri))) for module, identity, uri in rows]


def _read_epochs(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def export_store(store: str | os.PathLike | None, output: str | os.PathLike, where: str | None = None) -> Exported:
    """Write every ended cell of `store` (those the runs view selects with `where`, if given) to `output`."""
    from seedbench.record import CACHED_MARKER, EPOCHS_FILE, RUN_FILE, CorruptRecord, read_record, read_record_file
    from seedbench.sweep.runners.store_context import store_dir

    directory = store_dir(store)
    if not directory.is_dir():
        raise StoreError(f"store {directory} does not exist; pass --store with the folder a sweep wrote")
    target = Path(output).expanduser()
    if not target.name.endswith(".jsonl.gz"):
        raise StoreError(f"-o {output}: the export is gzip-compressed JSON Lines; name it *.jsonl.gz")
    if not target.parent.is_dir():
        raise StoreError(f"-o {output}: folder {target.parent} does not exist")
    selected: set[Path] | None = None
    if where is not None:
        from seedbench.store import Store

        with Store(directory) as view:
            _, rows = view.fetch(f"SELECT path FROM runs WHERE {view.where(where)}")
        selected = {Path(row[0]).resolve() for row in rows}
    report = Exported(target)
    lines = []
    for module, identity, folder in _stored_cells(directory):
        if selected is not None and folder.resolve() not in selected:
            continue
        why = None
        if not (folder / CACHED_MARKER).exists():
            why = "not ended (running, failed or interrupted)"
        else:
            try:
                if read_record(folder).status not in ("finished", "diverged"):
                    why = "not ended (running, failed or interrupted)"
            except CorruptRecord:
                why = "with an unreadable run.json"
        if why is None:
            try:
                model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
                run = read_record_file(folder / RUN_FILE)
                epochs = _read_epochs(folder / EPOCHS_FILE)
            except (OSError, ValueError, CorruptRecord):
                why = "with unreadable files"
        if why is not None:
            report.left_out[why] = report.left_out.get(why, 0) + 1
            continue
        version = model.get("version") or []
        lines.append(
            _dumps(
                {
                    "module": module,
                    "method": module.partition(".")[2],
                    "identity": identity,
                    "presets": [v[1:] for v in version if isinstance(v, str) and v.startswith("~")],
                    "config": {k: v for k, v in (model.get("config") or {}).items() if not str(k).startswith("_")},
                    "run": run,
                    "epochs": epochs,
                }
            )
        )
    from seedbench import __version__

    header = _dumps({"format": FORMAT, "version": VERSION, "seedbench": __version__, "cells": len(lines)})
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:  # whole or not at all; mtime 0 in the gzip header, so the same cells give the same bytes
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
            fh.write(("\n".join([header, *lines]) + "\n").encode("utf-8"))
        os.replace(tmp, target)
    except OSError as exc:
        raise StoreError(f"-o {output}: cannot write ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    report.cells = len(lines)
    return report


# -- import -----------------------------------------------------------------------------------------


@dataclass
class Imported:
    store: Path
    imported: int = 0
    already: int = 0  # the store held the same cell with the same result
    duplicates: int = 0  # the file held the same cell twice

    def describe(self) -> str:
        text = f"imported {self.imported} cells into {self.store}; {self.already} already there with the same result"
        return text + (f"; {self.duplicates} repeated in the file, stored once" if self.duplicates else "")


@dataclass
class _Entry:
    line: int
    data: dict[str, Any]
    resolved: Any = None  # seedbench.sweep.plan.ResolvedCell

    @property
    def label(self) -> str:
        return f"line {self.line} ({self.resolved.label if self.resolved is not None else self.data.get('method')})"


def result_of(run: dict[str, Any], epochs: list[dict[str, Any]]) -> str:
    """The cell's result as canonical text: its outcome and its curve without timings (see the module docstring)."""
    outcome = {k: run.get(k) for k in OUTCOME_KEYS}
    curve = [{k: v for k, v in row.items() if k not in EPOCH_TIMING_KEYS} for row in epochs]
    return _dumps({"run": outcome, "epochs": curve}, canonical=True)


def _first_difference(a: str, b: str) -> str:
    left, right = json.loads(a), json.loads(b)
    for key in OUTCOME_KEYS:
        if left["run"].get(key) != right["run"].get(key):
            return f"{key} {right['run'].get(key)!r} here, {left['run'].get(key)!r} in the file"
    if len(left["epochs"]) != len(right["epochs"]):
        return f"{len(right['epochs'])} epochs here, {len(left['epochs'])} in the file"
    for mine, theirs in zip(left["epochs"], right["epochs"]):
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                return f"epoch {theirs.get('epoch')} {key} {theirs.get(key)!r} here, {mine.get(key)!r} in the file"
    return "the records differ"


def read_export(path: str | os.PathLike) -> list[_Entry]:
    """The cells of an export file, checked for shape; StoreError (one line) for anything else."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise StoreError(f"{path}: no such file; give a file written by `seedbench store export`")
    try:
        with gzip.open(source, "rt", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise StoreError(
            f"{path}: not a gzip-compressed export ({type(exc).__name__}: {exc}); give a file written by `seedbench store export`"
        ) from None
    lines = text.splitlines()
    if not lines:
        raise StoreError(f"{path}: empty; give a file written by `seedbench store export`")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StoreError(f"{path}: not a seedbench cell export (its first line is no {FORMAT!r} header)")
    if header.get("version") != VERSION:
        raise StoreError(f"{path}: export format version {header.get('version')!r}; this seedbench reads version {VERSION}")
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise StoreError(f"{path}: line {number} is not JSON ({exc}); the file is damaged") from None
        problem = _shape_problem(data)
        if problem:
            raise StoreError(f"{path}: line {number}: {problem}")
        entries.append(_Entry(number, data))
    if header.get("cells") != len(entries):
        raise StoreError(
            f"{path}: the header announces {header.get('cells')!r} cells but the file holds {len(entries)}; the file is truncated or damaged"
        )
    return entries


def _shape_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    for key, kind in (("module", str), ("method", str), ("identity", str), ("presets", list), ("config", dict), ("run", dict), ("epochs", list)):
        if not isinstance(data.get(key), kind):
            return f"{key!r} missing or not a {kind.__name__}"
    if data["module"] != f"components.{data['method']}":
        return f"module {data['module']!r} is not method {data['method']!r}'s component"
    if data["run"].get("status") not in ("finished", "diverged"):
        return f"run status {data['run'].get('status')!r}: only finished or diverged cells are imported"
    if not all(isinstance(row, dict) for row in data["epochs"]) or not all(isinstance(p, str) for p in data["presets"]):
        return "epochs must be objects and presets names"
    return None


def _resolve(entry: _Entry) -> Any:
    """The entry as the planner's ResolvedCell, its config validated by today's method."""
    from pydantic import ValidationError

    from seedbench.config import Placement
    from seedbench.errors import ConfigError
    from seedbench.registry import get_method
    from seedbench.sweep.grid import Cell
    from seedbench.sweep.plan import ResolvedCell

    data = entry.data
    try:
        method = get_method(data["method"])
    except ConfigError:
        raise StoreError(
            f"line {entry.line}: method {data['method']!r} is not registered here; pass the plugin that defines it with --plugin"
        ) from None
    try:
        cfg = method.config.model_validate(data["config"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise StoreError(f"line {entry.line}: today's {method.name} config refuses {where}: {first['msg']}") from None
    cell = Cell(method.name, cfg.model, cfg.dataset, (("seed", cfg.seed),), tuple(data["presets"]))
    return ResolvedCell(cell, method, cfg, Placement())


def import_cells(path: str | os.PathLike, store: str | os.PathLike | None = None) -> Imported:
    """File every cell of export `path` into `store` (see the module docstring); all or nothing on bad input."""
    from seedbench.sweep.plan import CellIndex, plan_cells
    from seedbench.sweep.runners.locking import index_lock, index_path
    from seedbench.sweep.runners.store_context import check_store_writable, index_database, open_store, project_root, store_dir

    entries = read_export(path)
    for entry in entries:
        entry.resolved = _resolve(entry)
    directory = store_dir(store)
    if entries:
        check_store_writable(store)
    report = Imported(directory)
    if not entries:
        return report
    with open_store(store) as directory:
        database = index_path(directory, index_database(store), project_root())
        with index_lock(database):
            index = CellIndex([e.resolved for e in entries], database, directory)
            unique: dict[str, _Entry] = {}
            for entry in entries:  # check everything first: nothing is written unless every cell can be filed
                identity = index.identity(entry.resolved)
                if identity != entry.data["identity"]:
                    raise StoreError(
                        f"{entry.label}: its identity here is {identity}, the export says {entry.data['identity']}: the two checkouts "
                        "compute identities differently (other config defaults); run `seedbench store migrate` on the source store "
                        "with this seedbench and export again"
                    )
                result = result_of(entry.data["run"], entry.data["epochs"])
                if identity in unique:
                    earlier = unique[identity]
                    other = result_of(earlier.data["run"], earlier.data["epochs"])
                    if other != result:
                        raise StoreError(
                            f"{entry.label}: conflicts with line {earlier.line}, the same cell with another result ({_first_difference(result, other)})"
                        )
                    report.duplicates += 1
                    continue
                unique[identity] = entry
            todo = []
            for entry, planned in zip(unique.values(), plan_cells([e.resolved for e in unique.values()], database, repair=False, store=directory)):
                if planned.state in ("finished", "stale"):  # a record that ended (stale: under other code) is kept, never overwritten
                    from seedbench.record import EPOCHS_FILE, read_record_dict

                    held = result_of(read_record_dict(planned.path), _read_epochs(planned.path / EPOCHS_FILE))
                    mine = result_of(entry.data["run"], entry.data["epochs"])
                    if held != mine:
                        raise StoreError(
                            f"{entry.label}: conflicts with the cell this store holds at {planned.path} "
                            f"(same identity, another result: {_first_difference(mine, held)}); nothing was imported"
                        )
                    report.already += 1
                    continue
                todo.append(entry)
            if todo:
                for entry, planned in zip(todo, plan_cells([e.resolved for e in todo], database, repair=True, store=directory)):
                    _file_cell(entry, planned, directory)
                    report.imported += 1
    return report


def _file_cell(entry: _Entry, planned: Any, store: Path) -> None:
    """Materialise the cell (or take over its unfinished record) and write its files; `cached` last."""
    from seedbench.record import EPOCHS_FILE, RUN_FILE, TRACEBACK_FILE, write_json_atomic
    from seedbench.sweep.runners.locking import try_cell_lock

    interface = planned.interface
    if not interface.is_materialized():
        interface.materialize()
    folder = Path(interface.local_directory())
    lock = try_cell_lock(store, str(interface.uuid))
    if lock is None:
        raise StoreError(f"{entry.label}: the store is training this cell right now; import again once that sweep has ended")
    try:
        for stale in (CHECKPOINT_FILE, TRACEBACK_FILE):  # an unfinished run's state: the imported record replaces it
            (folder / stale).unlink(missing_ok=True)
        tmp = folder / f".{EPOCHS_FILE}.{os.getpid()}.tmp"
        tmp.write_text("".join(_dumps(row) + "\n" for row in entry.data["epochs"]), encoding="utf-8")
        os.replace(tmp, folder / EPOCHS_FILE)
        write_json_atomic(folder / RUN_FILE, entry.data["run"])
        interface.cached(True, reason="imported")
    finally:
        lock.release()
