"""Resolve and validate a grid's cells on the driver, then look each up in the store.

Resolution turns what the user wrote into what runs: an alias becomes its method and patch, presets
are applied in order, placement keys are split off, and the method's config validates the rest and
fills its defaults (lr, stop rule, the model's own initializer). Every name - method, model, dataset,
initializer, device - is checked here, and every dataset the grid needs is opened and checked once,
so a typo or a broken data file fails the sweep in one line before any run folder exists.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedbench.config import Placement, TrialConfig, split_placement
from seedbench.errors import ConfigError, SeedbenchError, StoreError
from seedbench.methods.base import Method
from seedbench.record import CACHED_MARKER, CorruptRecord, read_record, read_record_dict
from seedbench.sweep.fit import check_fit
from seedbench.sweep.grid import Cell, finite


@dataclass
class ResolvedCell:
    cell: Cell
    method: Method
    config: TrialConfig
    placement: Placement

    @property
    def params(self) -> dict[str, Any]:
        return self.config.model_dump()

    @property
    def module(self) -> str:
        """The cell's machinable component: its method's (seedbench/sweep/component.py)."""
        from seedbench.sweep.component import component_module

        return component_module(self.method.name)

    @property
    def version(self) -> list[Any]:
        """The component's version: the cell's science presets as `~name`, then the rest of its config."""
        from seedbench.sweep.component import version_for

        return version_for(self.method.name, self.cell.presets, self.params)

    @property
    def label(self) -> str:
        return self.cell.label


@dataclass
class PlannedCell:
    resolved: ResolvedCell
    state: str  # "finished" (reusable), "stale" (finished by other code), "failed" (failed earlier), "pending"
    path: Path | None = None  # the stored folder, when the cell has one
    record_id: str | None = None  # its index entry, when it has one
    _interface: Any = None  # machinable Interface, built only when the cell is prepared (driver only)
    code: str | None = None  # a finished cell's code_sha256, as its record holds it
    stale: str | None = None  # why a stale cell is stale (seedbench/sweep/runners/provenance.py)

    @property
    def cell(self) -> Cell:
        return self.resolved.cell

    @property
    def interface(self) -> Any:
        """The cell's machinable interface: the stored one if the cell has a record, else a new one.

        Built on first use, because building one costs milliseconds of machinable's config machinery and
        a sweep needs it only for the cells it prepares, when it prepares them.
        """
        if self._interface is None:
            if self.record_id is not None:
                from machinable import Interface

                self._interface = Interface.find_by_id(self.record_id)
            if self._interface is None:
                self._interface = build_interface(self.resolved)
        return self._interface

    @property
    def directory(self) -> Path | None:
        if self.path is not None:
            return self.path
        if self._interface is not None and self._interface.is_materialized():
            return Path(self._interface.local_directory())
        return None


def resolve_cell(cell: Cell, placement: dict[str, Any] | None = None) -> ResolvedCell:
    """What `cell` runs: its method and validated config, and where it runs (see the module docstring)."""
    from seedbench.registry import check_initializer, get_model, resolve_method
    from seedbench.sweep.presets import load_catalog

    method, patch = resolve_method(cell.method)
    catalog = load_catalog()
    values: dict[str, Any] = {"model": cell.model, "dataset": cell.dataset, **patch}
    for name in cell.presets:
        values.update(catalog.preset(name, method, values))  # values: the model and dataset a tuned: preset needs
    values.update(cell.patch())
    for key, value in values.items():
        finite(value, key)
    science, place = split_placement(values)
    try:
        where = Placement(**{**(placement or {}), **place})
    except Exception as exc:  # pydantic's ValidationError
        raise ConfigError(f"{cell.label}: {_first_error(exc)}") from None
    try:
        cfg = method.resolve(science)
    except ConfigError as exc:
        raise ConfigError(f"{cell.label}: {exc}") from None
    model = get_model(cfg.model)
    if cfg.init is None:
        cfg = cfg.model_copy(update={"init": model.default_init})
    check_initializer(cfg.init)  # a typo fails here, with a suggestion
    if cfg.framework == "tensorflow":  # the model's Keras builder and the method's implementation decide, not a list
        from seedbench.train.tf_check import tensorflow_refusal

        why = tensorflow_refusal(method, cfg)
        if why is not None:
            raise ConfigError(f"{cell.label}: {why}")
    from seedbench.data.registry import get_dataset_spec

    get_dataset_spec(cfg.dataset)
    return ResolvedCell(cell, method, cfg, where)


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        err = errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            return f"unknown key {key!r}"
        return f"{key}={err.get('input')!r}: {err['msg']}"
    return str(exc)


def resolve_grid(cells: list[Cell], placement: dict[str, Any] | None = None) -> list[ResolvedCell]:
    """Every cell resolved; the first invalid one fails the whole grid (one line).

    Cells that differ only in their seeds resolve alike, so the first of each group is resolved in full
    and the rest re-validate its config with their own seeds: a 10,000-seed grid resolves in about a
    second instead of twenty (docs/benchmarks.md, "Engine").
    """
    templates: dict[tuple, ResolvedCell] = {}
    resolved = []
    for cell in cells:
        key = (cell.group, tuple(name for name, _ in cell.seeds))
        first = templates.get(key)
        if first is None:
            templates[key] = first = resolve_cell(cell, placement)
            resolved.append(first)
            continue
        try:
            cfg = first.method.config.model_validate({**first.params, **cell.seed_values})
        except Exception as exc:  # pydantic's ValidationError: a seed out of range
            raise ConfigError(f"{cell.label}: {_first_error(exc)}") from None
        resolved.append(ResolvedCell(cell, first.method, cfg, first.placement))
    check_datasets(resolved)
    check_fit(resolved)  # every model x dataset group fits, or one line (seedbench/sweep/fit.py)
    return resolved


def check_datasets(resolved: list[ResolvedCell]) -> dict[tuple, Any]:
    """Open and check every dataset the grid needs, once each, before any cell exists."""
    from seedbench.data.registry import check_dataset

    seen: dict[tuple, Any] = {}
    for r in resolved:
        cfg = r.config
        key = (cfg.dataset, r.placement.data_dir, cfg.val_size, cfg.limit_train)
        if key not in seen:
            seen[key] = check_dataset(cfg.dataset, r.placement.data_dir, cfg.val_size, cfg.limit_train)
            info = seen[key]
            if cfg.augment:
                from seedbench.data.registry import get_dataset_spec

                if get_dataset_spec(cfg.dataset).augmentation is None:
                    raise ConfigError(
                        f"{r.label}: dataset {cfg.dataset} declares no augmentation; drop augment=true (or the ~table1 preset) or register one"
                    )
            n_train = getattr(info, "n_train", None)
            if n_train is not None and cfg.batch_size > n_train:
                raise ConfigError(f"{r.label}: batch_size {cfg.batch_size} exceeds the {n_train} training images; lower batch_size")
    return seen


def build_interface(resolved: ResolvedCell) -> Any:
    """A new machinable interface of the cell's method component, its config set from the resolved one
    (seedbench.sweep.component.new_interface: the layers machinable would compose, without omegaconf)."""
    from seedbench.sweep.component import new_interface

    try:
        interface = new_interface(resolved.method, resolved.cell.presets, resolved.params)
        interface.config  # noqa: B018 - resolve now
    except SeedbenchError:
        raise
    except Exception as exc:  # machinable wraps pydantic and lookup errors in ConfigurationError
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ConfigError(f"{resolved.label}: invalid config: {text}") from None
    return interface


class CellIndex:
    """Every stored cell of this project, read from machinable's index in one query.

    A cell's index row is keyed by (parent, identity, predicate); the identity is machinable's own
    content hash of the cell's module and config (`canonical_identity_key`: the config without the
    keys at their defaults), computed here without building an interface, so looking up 10,000 cells
    is 10,000 dictionary look-ups instead of 10,000 interfaces and queries. tests/test_pack_engine.py
    checks that it finds exactly what machinable finds.

    Because a key at its default is left out of the hash, a record made when a default was different
    would match a cell of today's default: such a match is refused (`StaleDefaults`) until
    `seedbench store migrate` has re-keyed the record.
    """

    def __init__(self, resolved: list[ResolvedCell], database: Path | None, store: Path | None = None):
        """`resolved`: the grid (one interface is built per method); `store`: the store's folder, to see a
        copied store's rows where they are now (reads only)."""
        from machinable.config import identity_exclude

        from seedbench.sweep.runners.store_context import moved_from, moved_uri, read_index

        self.components: dict[str, tuple[str, dict[str, Any], set[str]]] = {}  # method -> (module, defaults, excluded)
        predicates = set()
        for r in resolved:
            if r.method.name not in self.components:
                interface = build_interface(r)
                default = interface.config_layers().default
                self.components[r.method.name] = (interface.module, default, identity_exclude(type(interface).Config))
                predicates.add(interface.predicate_key)
        self.rows: dict[str, tuple[str, str, str, str]] = {}  # identity -> (record id, uri, module, stored defaults)
        self._fresh: dict[tuple[str, str], list[str]] = {}
        self.store = store
        if database is None or not Path(database).is_file():
            return
        from machinable import Project
        from machinable.utils import path_to_uri

        project = path_to_uri(os.path.abspath(os.path.expanduser(Project.get().config.directory)))
        modules = sorted({module for module, _, _ in self.components.values()})
        marks = ",".join("?" * len(modules))
        connection = read_index(Path(database))
        try:  # the cells whose parent is this project's root entry, as machinable's dedup key scopes them
            rows = connection.execute(
                f"""SELECT c.identity_key, c.record_id, COALESCE(c.local_uri, c.storage_uri), c.module, c.config_default_json
                FROM 'index' c JOIN 'index' p ON c.parent_id = p.record_id
                WHERE p.kind = 'Project' AND p.storage_uri = ? AND c.module IN ({marks}) AND c.predicate_key IN ({",".join("?" * len(predicates))})
                AND c.hidden = 0 ORDER BY c.created_at_ns""",
                (project, *modules, *sorted(predicates)),
            ).fetchall()
        except sqlite3.OperationalError as exc:  # machinable creates the file, then its table: a sweep beside
            if "no such table" not in str(exc):  # this one may be creating the index right now
                raise
            rows = []
        finally:
            connection.close()
        old = moved_from(Path(database), Path(store)) if store is not None else None
        for identity, record_id, uri, module, default in rows:
            self.rows.setdefault(
                identity, (record_id, moved_uri(uri, old, Path(store)) if old is not None else uri, module, default)
            )  # machinable's LIMIT 1: the first

    def identity(self, resolved: ResolvedCell) -> str:
        """machinable's `canonical_identity_key`. For a flat config (no mapping, no key excluded) its
        default-stripping is one comprehension: a third of machinable's generic walk, at 10,000 cells."""
        from machinable.config import canonical_identity_key
        from machinable.utils import object_hash, sanitize_filename

        module, default, exclude = self.components[resolved.method.name]
        params = resolved.params
        if exclude or dict in set(map(type, params.values())):
            key = canonical_identity_key(module, params, default, exclude)
        else:
            key = object_hash({"module": module, "config": {k: v for k, v in params.items() if k not in default or default[k] != v}})[:24]
        return sanitize_filename(key, max_len=128)

    def entry(self, resolved: ResolvedCell) -> tuple[str, Path] | None:
        """(record id, folder) of the cell's stored row, or None."""
        from machinable.utils import uri_to_path

        row = self.rows.get(self.identity(resolved))
        if row is None:
            return None
        changed = self.changed_defaults(row[2], row[3])
        if changed:
            raise StaleDefaults(resolved.label, row[2], changed, self.store)
        return (row[0], Path(uri_to_path(row[1])))

    def changed_defaults(self, module: str, stored: str) -> list[str]:
        """The config keys whose default, as the record stored it, is not today's (or that no longer exist)."""
        key = (module, stored)
        if key not in self._fresh:
            import json

            current = next((default for m, default, _ in self.components.values() if m == module), {})
            then = json.loads(stored or "{}")
            self._fresh[key] = sorted(k for k, v in then.items() if k not in current or current[k] != v)
        return self._fresh[key]


class StaleDefaults(StoreError):
    """A stored cell matches by identity, but was recorded when some of its config's defaults were different."""

    def __init__(self, label: str, module: str, keys: list[str], store: Path | None):
        shown = ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
        where = f" --store {store}" if store is not None else ""
        super().__init__(
            f"{label}: the store holds a record of this cell's identity made when {module} had other defaults ({shown}); "
            f"run `seedbench store migrate{where}` to re-key such records under today's defaults, then sweep again"
        )


def plan_cells(resolved: list[ResolvedCell], database: Path | None, repair: bool = True, store: Path | None = None) -> list[PlannedCell]:
    """Every cell looked up in the store at once (CellIndex).

    A cell counts as finished only with machinable's `cached` marker AND a record that parses and says
    it ended; a truncated or corrupt run.json means the cell is redone, not reused. A finished cell
    whose method's code changed since is "stale" (StaleCheck; the sweep decides what to do with it).
    With repair=False (a dry run) nothing is written: not the index, not a cell's folder.
    """
    from seedbench.sweep.runners.provenance import StaleCheck

    if not resolved:
        return []
    index = CellIndex(resolved, database, store)
    check = StaleCheck(store if store is not None else Path(database).parent if database is not None else None)
    planned = []
    for r in resolved:
        entry = index.entry(r)
        planned.append(PlannedCell(r, "pending") if entry is None else check.judge(_stored_state(r, entry[0], entry[1], repair)))
    return planned


def _stored_state(resolved: ResolvedCell, record_id: str, directory: Path, repair: bool) -> PlannedCell:
    """The state of a cell that has an index row: finished, failed, pending (unfinished), or broken."""
    if (directory / CACHED_MARKER).exists():
        try:
            record = read_record(directory)
        except CorruptRecord:
            record = None
        if record is not None and record.status in ("finished", "diverged"):
            return PlannedCell(resolved, "finished", directory, record_id, code=record.code_sha256)
        if repair:  # machinable marked it done, but its record is truncated or corrupt: redo it
            (directory / CACHED_MARKER).unlink(missing_ok=True)
    if not (directory / "model.json").exists():
        if repair:  # half-materialised (a full disk or a kill while it was prepared): forget the entry, build afresh
            from seedbench.sweep.runners.dispatch import forget_entry

            forget_entry(record_id, directory)
        return PlannedCell(resolved, "pending")
    state = "failed" if read_record_dict(directory).get("status") == "failed" else "pending"
    return PlannedCell(resolved, state, directory, record_id)
