"""Columns of the `runs` and `epochs` views: the ones every store has, their types, and their order.

Declared columns exist even when no run has the key (an empty store, a store without failures has
no `error` key anywhere), so queries written against the documented schema never hit "unknown
column" by accident. Other keys - method-specific config, optimizer diagnostics - appear as columns
of an inferred type as soon as some run has them.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from seedbench.record import TOP_LEVEL_KEYS, RunRecord

# The first columns of `runs`, in this order; every other typed column comes from RunRecord's fields.
RUN_HEAD = {
    "run_id": "VARCHAR",
    "path": "VARCHAR",
    "method": "VARCHAR",
    "arm": "VARCHAR",
    "model": "VARCHAR",
    "dataset": "VARCHAR",
    "seed": "BIGINT",
    "status": "VARCHAR",
    "reason": "VARCHAR",
    "error": "VARCHAR",
}


def _record_columns() -> dict[str, str]:
    """RunRecord's scalar fields as typed columns (its containers become <key>_<subkey> columns instead)."""
    out = {}
    for name, field in RunRecord.model_fields.items():
        kind = _sql_type(field.annotation)
        container = (
            typing.get_origin(field.annotation) in (dict, list)
            or any(typing.get_origin(a) in (dict, list) for a in typing.get_args(field.annotation))
            or field.annotation in (dict, list)
        )
        if name not in RUN_HEAD and kind is not None and not container:
            out[name] = kind
    return out


EPOCH_COLUMNS = {
    "run_id": "VARCHAR",
    "path": "VARCHAR",
    "epoch": "BIGINT",
    "train_loss": "DOUBLE",
    "train_acc": "DOUBLE",
    "val_loss": "DOUBLE",
    "val_acc": "DOUBLE",
    "seconds": "DOUBLE",
    "images_per_s": "DOUBLE",
}


def _sql_type(annotation: Any) -> str | None:
    """The column type of a pydantic field: Optional[X] is X; unions of several types are inferred."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _sql_type(args[0]) if len(args) == 1 else None
    if typing.get_origin(annotation) is typing.Literal:
        return "VARCHAR" if all(isinstance(a, str) for a in typing.get_args(annotation)) else None
    origin = typing.get_origin(annotation) or annotation
    return {bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE", str: "VARCHAR", dict: "VARCHAR", list: "VARCHAR"}.get(origin)


RUN_TAIL = _record_columns()


def _config_column(name: str) -> str:
    return f"config_{name}" if name in TOP_LEVEL_KEYS else name


@dataclass(frozen=True)
class _Schema:
    base: dict[str, str]  # config columns every store has (TrialConfig's)
    extra: dict[str, str]  # typed method-specific config columns, present when the data has them
    run_columns: dict[str, str]  # the declared `runs` columns, in view order
    run_types: dict[str, str]  # every `runs` column whose type the schema fixes


def _method_configs() -> tuple[type, ...]:
    """Every registered method's config class (plugins included), without duplicates.

    The method registry (seedbench.registry) replaced seedbench.config.METHOD_CONFIGS; the fallback
    keeps the store readable in a tree that still has the old dict.
    """
    try:
        from seedbench.registry import get_method, method_names
    except ImportError:
        from seedbench.config import METHOD_CONFIGS  # type: ignore[attr-defined]

        return tuple(METHOD_CONFIGS.values())
    return tuple(dict.fromkeys(get_method(name).config for name in method_names(aliases=False)))


def _schema() -> _Schema:
    """The schema follows the config registry (methods register their config classes at import)."""
    from seedbench.config import TrialConfig

    return _build_schema(TrialConfig, _method_configs())


@lru_cache(maxsize=4)
def _build_schema(base_config: type, method_configs: tuple[type, ...]) -> _Schema:
    base = {_config_column(n): t for n, f in base_config.model_fields.items() if (t := _sql_type(f.annotation))}
    extra: dict[str, str] = {}
    conflicts: set[str] = set()
    for config in method_configs:
        for name, field in config.model_fields.items():
            column, kind = _config_column(name), _sql_type(field.annotation)
            if column in base or kind is None:
                continue
            if extra.get(column, kind) != kind:
                conflicts.add(column)
            extra[column] = kind
    extra = {k: v for k, v in extra.items() if k not in conflicts}
    columns = dict(RUN_HEAD)
    columns.update({k: v for k, v in base.items() if k not in columns and k not in RUN_TAIL})
    columns.update(RUN_TAIL)
    return _Schema(base, extra, columns, {**extra, **columns})


def config_columns() -> tuple[dict[str, str], dict[str, str]]:
    """(config columns every store has, typed method-specific ones) from the config classes."""
    schema = _schema()
    return dict(schema.base), dict(schema.extra)


def run_columns() -> dict[str, str]:
    """The declared `runs` columns in view order: identity, config, timings, host, final metrics."""
    return dict(_schema().run_columns)


def run_types() -> dict[str, str]:
    """Every `runs` column whose type is fixed by the schema rather than inferred (do not modify)."""
    return _schema().run_types


STRICT_RUN_COLUMNS = frozenset(RUN_HEAD) | frozenset(RUN_TAIL)  # written by seedbench.train.trial itself


def ordered(present: list[str], declared: dict[str, str]) -> list[str]:
    """Declared columns first in their order, then the data's own columns alphabetically."""
    extras = sorted((c for c in present if c not in declared), key=str.lower)
    return [*declared, *extras]
