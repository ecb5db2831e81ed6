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


def _config_error(cell: Cell, exc: Exception) -> ConfigError:
    message = str(exc).strip().splitlines()
    text = " ".join(line.strip() for line in message if line.strip() and not line.strip().startswith("For further"))
    return ConfigError(f"{cell.label}: invalid config: {text}")


def plan_cells(cells: list[Cell]) -> list[PlannedCell]:
    """Build (without running) every cell's interface and find what the store already holds.

    Building the config here validates every cell before anything runs: a typo in a preset or an
    override fails the whole sweep up front instead of one worker at a time.
    """
    from machinable import get

    planned = []
    for cell in cells:
        try:
            interface = get(cell.module, cell.version)
            interface.config  # noqa: B018 - resolve and validate now
        except ModuleNotFoundError as exc:
            if exc.name not in (cell.module, "components"):
                raise
            from seedbench.config import METHOD_CONFIGS

            raise ConfigError(f"unknown method {cell.method!r}; choose one of {', '.join(sorted(METHOD_CONFIGS))}") from None
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
