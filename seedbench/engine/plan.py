"""Resolve a grid's cells against the store: which are finished, which failed before, which to run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedbench.errors import ConfigError
from seedbench.grid import Cell
from seedbench.trial import RUN_FILE


@dataclass
class PlannedCell:
    cell: Cell
    interface: Any  # machinable Interface; kept in the driver only
    state: str  # "finished" (reusable), "failed" (failed earlier), "pending"

    @property
    def directory(self) -> Path | None:
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
    from seedbench.engine.store_context import project_root

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


def plan_cells(cells: list[Cell]) -> list[PlannedCell]:
    """Build (without running) every cell's interface and find what the store already holds.

    Building the config here validates every cell before anything runs: a typo in a preset or an
    override fails the whole sweep up front instead of one worker at a time.
    """
    from machinable import get

    from seedbench.catalog import load_catalog

    methods = available_methods()
    catalog = load_catalog()
    for preset in sorted({p for cell in cells for p in cell.presets}):
        catalog.preset(preset)  # unknown presets fail here, with a suggestion
    planned = []
    for cell in cells:
        if cell.method not in methods:
            raise ConfigError(f"unknown method {cell.method!r}; choose one of {', '.join(methods)}")
        try:
            interface = get(cell.module, cell.version)
            interface.config  # noqa: B018 - resolve and validate now
        except Exception as exc:  # machinable wraps pydantic and lookup errors in ConfigurationError
            raise _config_error(cell, exc) from None
        state = "pending"
        if interface.is_materialized():
            if interface.cached():
                state = "finished"
            else:
                record = PlannedCell(cell, interface, state).record()
                if record.get("status") == "failed":
                    state = "failed"
        planned.append(PlannedCell(cell, interface, state))
    return planned
