"""machinable.yaml: the catalogue of named versions (presets) and the learning-rate tables.

Presets are config patches composed in order (`["~cnn", "~fmnist", {"seed": 3}]`), as in the
random-bases study. The file is validated when it is loaded - an unknown preset key or a value of the
wrong type is reported with the preset's name - so a typo fails before a sweep, not inside a worker.
Editing the file changes defaults; it is re-read whenever it changes on disk.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from seedbench.config import METHOD_CONFIGS
from seedbench.errors import ConfigError, read_yaml

CATALOG_ENV = "SEEDBENCH_CATALOG"


def catalog_path() -> Path:
    """$SEEDBENCH_CATALOG, else machinable.yaml at the project root (beside the seedbench package)."""
    if os.environ.get(CATALOG_ENV):
        return Path(os.environ[CATALOG_ENV])
    return Path(__file__).resolve().parents[2] / "machinable.yaml"


@dataclass(frozen=True)
class Catalog:
    path: Path
    presets: dict[str, dict[str, Any]]
    learning_rates: dict[str, dict[str, dict[str, float]]]

    def preset(self, name: str) -> dict[str, Any]:
        if name not in self.presets:
            close = difflib.get_close_matches(name, self.presets, n=1)
            hint = f" (did you mean ~{close[0]}?)" if close else ""
            raise ConfigError(
                f"unknown preset ~{name}{hint}; presets in {self.path.name}: "
                + ", ".join("~" + p for p in sorted(self.presets))
            )
        return dict(self.presets[name])

    def learning_rate(self, table: str, method: str, model: str, dataset: str) -> float:
        """The lr for method x model-dataset: the named table, then 'default', then default's '*'."""
        if table not in self.learning_rates:
            raise ConfigError(
                f"unknown learning-rate table {table!r}; tables in {self.path.name}: {', '.join(self.learning_rates)}"
            )
        cell = f"{model}-{dataset}"
        for name in (table, "default"):
            rates = self.learning_rates.get(name, {}).get(method, {})
            if cell in rates:
                return float(rates[cell])
        fallback = self.learning_rates.get("default", {}).get(method, {}).get("*")
        if fallback is None:
            raise ConfigError(
                f"no learning rate for {method} on {cell} in {self.path.name}; pass lr=... or add it under "
                f"learning_rates.{table}.{method}"
            )
        return float(fallback)


def _field_types() -> dict[str, list[Any]]:
    types: dict[str, list[Any]] = {}
    for cfg in METHOD_CONFIGS.values():
        for key, field in cfg.model_fields.items():
            types.setdefault(key, []).append(field.annotation)
    return types


def _validate_preset(path: Path, name: str, patch: Any, types: dict[str, list[Any]]) -> dict[str, Any]:
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        raise ConfigError(f"{path.name}: preset {name!r} must be a mapping of config keys, found {type(patch).__name__}")
    for key, value in patch.items():
        if key not in types:
            close = difflib.get_close_matches(str(key), types, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path.name}: preset {name!r} sets unknown key {key!r}{hint}")
        errors = []
        for annotation in types[key]:
            try:
                TypeAdapter(annotation).validate_python(value)
                break
            except ValidationError as exc:
                errors.append(exc.errors()[0]["msg"])
        else:
            raise ConfigError(f"{path.name}: preset {name!r} key {key!r} = {value!r} has the wrong type ({errors[0]})")
    return dict(patch)


_CACHE: dict[Path, tuple[float, Catalog]] = {}


def load_catalog(path: Path | None = None) -> Catalog:
    path = Path(path) if path else catalog_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise ConfigError(f"{path}: catalogue not found; run from the seedbench project root or set {CATALOG_ENV}") from None
    cached = _CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    raw = read_yaml(path, "catalogue") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping with 'presets' and 'learning_rates'")
    unknown = set(raw) - {"presets", "learning_rates"}
    if unknown:
        raise ConfigError(f"{path.name}: unknown top-level section(s) {sorted(unknown)}; use 'presets' and 'learning_rates'")
    types = _field_types()
    presets = {str(n): _validate_preset(path, str(n), p, types) for n, p in (raw.get("presets") or {}).items()}
    rates = raw.get("learning_rates") or {}
    for table, methods in rates.items():
        for method, cells in (methods or {}).items():
            for cell, value in (cells or {}).items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ConfigError(f"{path.name}: learning_rates.{table}.{method}.{cell} = {value!r} must be a positive number")
    catalog = Catalog(path=path, presets=presets, learning_rates=rates)
    _CACHE[path] = (mtime, catalog)
    return catalog
