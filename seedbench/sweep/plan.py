"""Resolve and validate a grid's cells on the driver, then look each up in the store.

Resolution turns what the user wrote into what runs: an alias becomes its method and patch, presets
are applied in order, placement keys are split off, and the method's config validates the rest and
fills its defaults (lr, stop rule, the model's own initializer). Every name - method, model, dataset,
initializer, device - is checked here, and every dataset the grid needs is opened and checked once,
so a typo or a broken data file fails the sweep in one line before any run folder exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedbench.config import Placement, TrialConfig, split_placement
from seedbench.errors import ConfigError, SeedbenchError
from seedbench.methods.base import Method
from seedbench.record import CACHED_MARKER, is_complete, read_record_dict
from seedbench.sweep.grid import Cell, finite

CELL_MODULE = "components.cell"


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
    def version(self) -> list[dict[str, Any]]:
        """The component's config: the method and its resolved config as canonical JSON (components/cell.py)."""
        import json

        return [{"method": self.method.name, "params": json.dumps(self.params, sort_keys=True, separators=(",", ":"))}]

    @property
    def label(self) -> str:
        return self.cell.label


@dataclass
class PlannedCell:
    resolved: ResolvedCell
    interface: Any  # machinable Interface; kept in the driver only
    state: str  # "finished" (reusable), "failed" (failed earlier), "pending"
    path: Path | None = None  # the stored folder, when known without hydrating the interface

    @property
    def cell(self) -> Cell:
        return self.resolved.cell

    @property
    def directory(self) -> Path | None:
        if self.path is not None:
            return self.path
        return Path(self.interface.local_directory()) if self.interface.is_materialized() else None

    def record(self) -> dict[str, Any]:
        directory = self.directory
        return read_record_dict(directory) if directory is not None else {}


def resolve_cell(cell: Cell, placement: dict[str, Any] | None = None) -> ResolvedCell:
    """What `cell` runs: its method and validated config, and where it runs (see the module docstring)."""
    from seedbench.registry import check_initializer, get_model, resolve_method
    from seedbench.sweep.presets import load_catalog

    method, patch = resolve_method(cell.method)
    catalog = load_catalog()
    values: dict[str, Any] = {"model": cell.model, "dataset": cell.dataset, **patch}
    for name in cell.presets:
        values.update(catalog.preset(name, method))
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
    if cfg.framework == "tensorflow":  # what the TensorFlow runner implements (seedbench/train/tf_runner.py)
        if cfg.model not in ("fc", "cnn"):
            raise ConfigError(f"{cell.label}: framework=tensorflow runs the fc and cnn models only; drop framework or use --model fc,cnn")
        if getattr(cfg, "bases", "gaussian") != "gaussian" or cfg.stabilize or cfg.rewire:
            raise ConfigError(f"{cell.label}: framework=tensorflow has no Hadamard bases or init pipelines; use framework=torch for them")
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
    """Every cell resolved; the first invalid one fails the whole grid (one line)."""
    resolved = [resolve_cell(cell, placement) for cell in cells]
    check_datasets(resolved)
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


def _stored_entry(interface: Any) -> Any:
    """The index row holding this interface's identity, if any: one keyed SQL lookup.

    machinable's `get()` compares the identity of every stored record of the module (quadratic over a
    grid, and blind past 1000 records); the index's dedup key (parent, identity, predicate) finds the
    same row directly.
    """
    from machinable import Index, Project
    from machinable.utils import sanitize_filename

    Project.get().ensure_project_root()
    parent = interface.parent
    return Index.get().get_entry(
        parent.record_id if parent is not None else None,
        sanitize_filename(interface.catalog_identity_key(), max_len=128),
        interface.predicate_key,
    )


def build_interface(resolved: ResolvedCell) -> Any:
    from machinable import get

    try:
        interface = get.new(CELL_MODULE, resolved.version)
        interface.config  # noqa: B018 - resolve now
    except SeedbenchError:
        raise
    except Exception as exc:  # machinable wraps pydantic and lookup errors in ConfigurationError
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ConfigError(f"{resolved.label}: invalid config: {text}") from None
    return interface


def plan_cell(resolved: ResolvedCell, repair: bool = True) -> PlannedCell:
    """One cell: build its interface, then look its identity up in the index.

    A cell counts as finished only with machinable's `cached` marker AND a record that parses and says
    it ended; a truncated or corrupt run.json means the cell is redone, not reused.
    """
    from machinable import Interface
    from machinable.utils import uri_to_path

    interface = build_interface(resolved)
    entry = _stored_entry(interface)
    if entry is None:
        return PlannedCell(resolved, interface, "pending")
    directory = Path(uri_to_path(entry.local_uri or entry.storage_uri))
    if (directory / CACHED_MARKER).exists():
        if is_complete(directory):
            return PlannedCell(resolved, interface, "finished", directory)
        if repair:  # machinable marked it done, but its record is truncated or corrupt: redo it
            (directory / CACHED_MARKER).unlink(missing_ok=True)
    if not (directory / "model.json").exists():
        if not repair:
            return PlannedCell(resolved, interface, "pending")
        # half-materialised (a full disk or a kill while it was prepared): forget the entry, build afresh
        from seedbench.sweep.runners.dispatch import forget_entry

        forget_entry(entry, directory)
        return PlannedCell(resolved, interface, "pending")
    stored = Interface.find_by_id(entry.record_id)
    interface = stored if stored is not None else interface
    state = "failed" if read_record_dict(directory).get("status") == "failed" else "pending"
    return PlannedCell(resolved, interface, state, directory)
