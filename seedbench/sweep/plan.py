"""Resolve a grid's cells against the store: which are finished, which failed before, which to run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedbench.sweep.runners.dispatch import CACHED_MARKER, RUN_FILE  # not seedbench.train.trial: the driver never needs torch
from seedbench.errors import ConfigError
from seedbench.sweep.grid import Cell


@dataclass
class PlannedCell:
    cell: Cell
    interface: Any  # machinable Interface; kept in the driver only
    state: str  # "finished" (reusable), "failed" (failed earlier), "pending"
    path: Path | None = None  # the stored folder, when known without hydrating the interface

    @property
    def directory(self) -> Path | None:
        if self.path is not None:
            return self.path
        return Path(self.interface.local_directory()) if self.interface.is_materialized() else None

    def record(self) -> dict[str, Any]:
        directory = self.directory
        if directory is None:
            return {}
        try:
            return json.loads((directory / RUN_FILE).read_text())
        except (OSError, ValueError):
            return {}


def available_methods() -> list[str]:
    """Methods are the component modules of the project (components/<method>.py)."""
    from seedbench.sweep.runners.store_context import project_root

    skip = {"__init__", "trial"}
    return sorted(p.stem for p in (project_root() / "components").glob("*.py") if p.stem not in skip)


def _config_error(cell: Cell, exc: BaseException) -> ConfigError:
    """Turn machinable's and pydantic's multi-line errors into one line naming the key and the fix."""
    from pydantic import ValidationError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__
    if isinstance(cause, ValidationError):
        parts = []
        for err in cause.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                parts.append(f"unknown config key {key!r}")
            else:
                parts.append(f"{key}={err.get('input')!r}: {err['msg']}")
        return ConfigError(f"{cell.label}: invalid config: {'; '.join(parts)}")
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return ConfigError(f"{cell.label}: invalid config: {text}")


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


def check_cells(cells: list[Cell]) -> None:
    """The checks that concern the grid as a whole: known methods and presets."""
    from seedbench.sweep.presets import load_catalog

    methods = available_methods()
    for method in sorted({cell.method for cell in cells}):
        if method not in methods:
            raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(methods)}")
    catalog = load_catalog()
    for preset in sorted({p for cell in cells for p in cell.presets}):
        catalog.preset(preset)  # unknown presets fail here, with a suggestion


def plan_cell(cell: Cell) -> PlannedCell:
    """One cell: build and validate its interface, then look its identity up in the index.

    Building the config validates the cell before anything runs (a typo in a preset or an override
    fails the sweep up front, not one worker at a time); a finished cell is recognised from its
    folder's `cached` marker without loading its record.
    """
    from machinable import Interface, get
    from machinable.utils import uri_to_path

    try:
        interface = get.new(cell.module, cell.version)
        interface.config  # noqa: B018 - resolve and validate now
    except Exception as exc:  # machinable wraps pydantic and lookup errors in ConfigurationError
        raise _config_error(cell, exc) from None
    entry = _stored_entry(interface)
    if entry is None:
        return PlannedCell(cell, interface, "pending")
    directory = Path(uri_to_path(entry.local_uri or entry.storage_uri))
    if (directory / CACHED_MARKER).exists():
        return PlannedCell(cell, interface, "finished", directory)
    stored = Interface.find_by_id(entry.record_id)
    interface = stored if stored is not None else interface
    state = "failed" if PlannedCell(cell, interface, "pending", directory).record().get("status") == "failed" else "pending"
    return PlannedCell(cell, interface, state, directory)
