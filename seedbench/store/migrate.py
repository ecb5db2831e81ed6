"""`seedbench store migrate`: re-key a store's cell records for today's components and defaults, in place.

A cell's identity is machinable's hash of its component module and its config without the keys at
their defaults. Two kinds of stored records no longer carry the identity today's sweep computes:

- cells of the one-component layout (seedbench before per-method components): module
  `components.cell`, config `{method, params}` with the whole resolved config as one JSON string;
- cells of a method's component recorded when some of its config's defaults were different (a sweep
  refuses to reuse those: their hash left out a key whose default has changed since).

Each becomes a record of `components.<method>` whose config is the method's config as fields,
validated by today's config class (a key added since takes its default), with today's defaults
layer and identity: model.json, id.json and the index row are rewritten; the folder, run record,
epochs, executions and relations stay where they are, so every finished cell is reused by the next
sweep of the same science. A record whose method is not registered (a plugin's: pass --plugin), or
whose config today's class refuses, is left as it is and named. Running it twice changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEGACY_MODULE = "components.cell"
COMPONENT_BASE = "seedbench.sweep.component"  # in a method component's inherits (its class's bases)


def legacy_version(method: str, params: dict[str, Any]) -> list[dict[str, str]]:
    """The one-component layout's version of a cell: the method and its config as canonical JSON."""
    return [{"method": method, "params": json.dumps(params, sort_keys=True, separators=(",", ":"))}]


def legacy_interface(method: str, params: dict[str, Any]) -> Any:
    """A cell as the one-component layout made it (components/cell.py): for tests and bench/bench_plan.py."""
    from machinable import get

    interface = get.new(LEGACY_MODULE, legacy_version(method, params))
    interface.config  # noqa: B018 - resolve now, as the old planner did
    return interface


@dataclass
class Migration:
    """What `migrate_store` did (or, with dry_run, would do)."""

    store: Path
    from_layout: int = 0  # one-component records re-keyed
    from_defaults: int = 0  # method-component records re-keyed under today's defaults
    current: int = 0  # already right
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (record, the record that already holds its identity)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (record, why)

    @property
    def rekeyed(self) -> int:
        return self.from_layout + self.from_defaults

    def describe(self, dry_run: bool = False) -> str:
        verb = "would re-key" if dry_run else "re-keyed"
        lines = [
            f"{verb} {self.rekeyed} cells in {self.store} ({self.from_layout} from the one-component layout, "
            f"{self.from_defaults} under today's defaults); {self.current} already current"
        ]
        for record, other in self.duplicates:
            lines.append(f"  kept {record} as it is: record {other} already holds its identity (the same science, trained again)")
        for record, why in self.skipped:
            lines.append(f"  skipped {record}: {why}")
        return "\n".join(lines)


def migrate_store(store: str | Path | None = None, dry_run: bool = False) -> Migration:
    """Re-key every cell record of `store` that today's planner would not find (see the module docstring).

    Holds the store's index lock, as a sweep's driver does while it plans, and each cell's lock while
    it moves it (a cell being trained right now is skipped): still, run it while no sweep uses the store.
    """
    from seedbench.sweep.runners.locking import index_lock, index_path
    from seedbench.sweep.runners.store_context import index_database, open_store, project_root

    with open_store(store) as directory:
        report = Migration(directory)
        database = index_path(directory, index_database(store), project_root())
        if not database.is_file():
            return report
        with index_lock(database), contextlib.closing(sqlite3.connect(str(database), timeout=60)) as db:
            rows = db.execute(
                """SELECT record_id, module, COALESCE(local_uri, storage_uri), identity_key, predicate_key, parent_id, config_default_json
                FROM 'index' WHERE kind = 'Interface' AND hidden = 0 AND (module = ? OR inherits_json LIKE ?) ORDER BY created_at_ns""",
                (LEGACY_MODULE, f'%"{COMPONENT_BASE}"%'),
            ).fetchall()
            moved: dict[Path, Path] = {}
            for row in rows:
                _migrate_record(db, directory, row, report, moved, dry_run)
        if moved:
            _repoint_sweep_files(directory, moved)
    return report


def _migrate_record(db: sqlite3.Connection, store: Path, row: tuple, report: Migration, moved: dict[Path, Path], dry_run: bool) -> None:
    from machinable.utils import normjson, sanitize_filename, uri_to_path
    from pydantic import ValidationError

    from seedbench.errors import ConfigError
    from seedbench.registry import get_method
    from seedbench.sweep.component import PACKAGE, new_interface, presets_within

    record_id, module, uri, identity, predicate_key, parent_id, stored_default = row
    recorded = Path(uri_to_path(uri))  # where the index says the folder is
    directory = _folder(recorded, record_id)
    try:
        model = json.loads((directory / "model.json").read_text())
        header = json.loads((directory / "id.json").read_text())
    except (OSError, ValueError) as exc:
        report.skipped.append((record_id, f"its folder {directory} has no readable model.json/id.json ({type(exc).__name__})"))
        return
    config = model.get("config") or {}
    if model.get("module") == LEGACY_MODULE:
        method_name, params = config.get("method"), _params(config.get("params"))
    else:  # a method's component (or a one-component record that a run of migrate left half-way)
        method_name = str(model.get("module", "")).partition(".")[2]
        params = {k: v for k, v in config.items() if not str(k).startswith("_")}
    if not isinstance(method_name, str) or params is None:
        report.skipped.append((record_id, "its model.json holds no method and config"))
        return
    try:
        method = get_method(method_name)
        cfg = method.config.model_validate(params)
    except ConfigError:
        report.skipped.append((record_id, f"method {method_name!r} is not registered here; pass the plugin that defines it with --plugin"))
        return
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        report.skipped.append((record_id, f"today's {method_name} config refuses {where}: {first['msg']}"))
        return
    params = cfg.model_dump()
    interface = new_interface(method, presets_within(method_name, params), params)
    layers = interface.config_layers()
    new_identity = sanitize_filename(interface.catalog_identity_key(), max_len=128)
    target = f"{PACKAGE}.{method_name}"
    if (module, identity, normjson(layers.default), model.get("module"), directory) == (target, new_identity, stored_default, target, recorded):
        report.current += 1
        return
    holder = db.execute(
        "SELECT record_id FROM 'index' WHERE parent_id IS ? AND identity_key = ? AND predicate_key = ? AND record_id != ? AND hidden = 0",
        (parent_id, new_identity, predicate_key, record_id),
    ).fetchone()
    if holder is not None:
        report.duplicates.append((record_id, holder[0]))
        return
    # machinable files a record under <identity>/<predicate>: a cell materialised later with the old
    # identity would land in this folder, so the folder moves to where its new identity belongs
    destination = directory.parent.parent / new_identity / directory.name if directory.parent.name == identity else directory
    if destination != directory and destination.exists():
        report.skipped.append((record_id, f"{destination} exists already; move it aside and run migrate again"))
        return
    if module == LEGACY_MODULE:
        report.from_layout += 1
    else:
        report.from_defaults += 1
    if dry_run:
        return
    from seedbench.sweep.runners.dispatch import write_json
    from seedbench.sweep.runners.locking import try_cell_lock

    lock = try_cell_lock(store, record_id)
    if lock is None:
        report.skipped.append((record_id, "it is being trained right now; run migrate again once that sweep has ended"))
        return
    try:
        model.update(
            module=target, version=interface.__model__.version, config=interface.__model__.config, inherits=list(interface.__model__.inherits)
        )
        write_json(directory / "model.json", model)
        write_json(directory / "id.json", {**header, "identity_key": new_identity})
        if destination != directory:
            destination.parent.mkdir(parents=True, exist_ok=True)
            directory.rename(destination)
            moved[directory] = destination
            with contextlib.suppress(OSError):
                directory.parent.rmdir()  # the old identity's folder, now empty
        old_prefix, new_prefix = _uri(recorded), _uri(destination)
        with db:
            db.execute(
                """UPDATE 'index' SET module = ?, identity_key = ?, config_default_json = ?, config_version_json = ?,
                config_update_json = ?, config_resolved_json = ?, inherits_json = ? WHERE record_id = ?""",
                (
                    target,
                    new_identity,
                    normjson(layers.default),
                    normjson(layers.version),
                    normjson(layers.update),
                    normjson(layers.resolved),
                    normjson(list(interface.__model__.inherits)),
                    record_id,
                ),
            )
            if destination != recorded:  # the record's row and its run-records' rows (nested in its folder)
                for column in ("storage_uri", "local_uri"):
                    db.execute(
                        f"UPDATE 'index' SET {column} = ? || substr({column}, ?) WHERE {column} = ? OR {column} LIKE ? ESCAPE '\\'",
                        (new_prefix, len(old_prefix) + 1, old_prefix, _like_prefix(old_prefix + "/")),
                    )
    finally:
        lock.release()


def _uri(path: Path) -> str:
    from machinable.utils import path_to_uri

    return path_to_uri(str(path))


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _folder(directory: Path, record_id: str) -> Path:
    """The record's folder; after a migrate interrupted between moving a folder and updating the index,
    the folder under another identity that holds this record."""
    if directory.exists():
        return directory
    for candidate in directory.parent.parent.glob(f"*/{directory.name}/id.json"):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(candidate.read_text()).get("uuid") == record_id:
                return candidate.parent
    return directory


def _repoint_sweep_files(store: Path, moved: dict[Path, Path]) -> None:
    """`seedbench status` finds a sweep's cells through <store>/sweeps/*.json: point them at the moved folders."""
    import os

    from seedbench.sweep.runners.dispatch import write_json
    from seedbench.sweep.status import SWEEPS_DIR

    relative = {os.path.relpath(old, store): os.path.relpath(new, store) for old, new in moved.items()}
    for path in sorted((store / SWEEPS_DIR).glob("*.json")):
        try:
            sweep = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        changed = False
        for cell in sweep.get("cells", []):
            if cell.get("dir") in relative:
                cell["dir"] = relative[cell["dir"]]
                changed = True
        if changed:
            write_json(path, sweep)


def _params(text: Any) -> dict[str, Any] | None:
    try:
        params = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return params if isinstance(params, dict) else None
