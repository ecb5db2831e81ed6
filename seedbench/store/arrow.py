"""Python values to Arrow tables for the cache's shards: declared types enforced, the rest inferred.

Only a refresh that reads run folders needs this (and pyarrow); opening an up-to-date cache does not.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import pyarrow as pa

from seedbench.record import EPOCHS_FILE
from seedbench.store.rows import COERCE, NONFINITE, CorruptRun, plain
from seedbench.store.schema import EPOCH_COLUMNS

ARROW = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BIGINT": pa.int64(), "BOOLEAN": pa.bool_()}


def _is_nonfinite(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in NONFINITE


def infer_array(values: list[Any]) -> pa.Array:
    """An Arrow column for undeclared keys: the narrowest of bool, int64, float64, string.

    Non-finite strings ("nan", "inf") next to numbers make a float column; any other mix of kinds
    becomes text, which is lossless and keeps one odd run from breaking the column for the rest.
    """
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int} and all(-(2**63) <= v < 2**63 for v in values if v is not None):
        return pa.array(values, pa.int64())
    numbers = {int, float}
    if kinds <= numbers | {str} and kinds & numbers and all(_is_nonfinite(v) for v in values if isinstance(v, str)):
        return pa.array([NONFINITE[v.strip().lower()] if isinstance(v, str) else v for v in values], pa.float64())
    if kinds <= numbers:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values], pa.string())


def rows_to_table(rows: list[dict[str, Any]], declared: dict[str, str], strict: Collection[str] | None = None) -> pa.Table:
    """Rows (dicts with varying keys) to one Arrow table; declared columns get their declared type."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return columns_to_table({name: [row.get(name) for row in rows] for name in names}, declared, strict)


_SIMPLE = (pa.null(), pa.bool_(), pa.int64(), pa.float64(), pa.string())


def _declared_array(name: str, values: list[Any], kind: str) -> pa.Array:
    """Arrow's own conversion when the values already have the type; per-value coercion otherwise.

    Integers are inferred, not converted: Arrow would silently truncate 1.5 to 1.
    """
    target = ARROW[kind]
    try:
        array = pa.array(values) if kind == "BIGINT" else pa.array(values, target)
        if array.type == target or pa.types.is_null(array.type):
            return array.cast(target) if array.type != target else array
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    coerce = COERCE[kind]
    try:
        return pa.array([coerce(v) for v in values], target)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def _inferred_arrays(name: str, values: list[Any]) -> list[tuple[str, pa.Array]]:
    """Undeclared keys: Arrow's inference when it gives a plain type; objects become <key>_<sub>."""
    try:
        array = pa.array(values)
        if array.type in _SIMPLE:
            return [(name, array)]
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    if any(isinstance(v, dict) for v in values):
        out = []
        scalars = [None if isinstance(v, dict) else v for v in values]
        if any(v is not None for v in scalars):
            out.append((name, infer_array([plain(v) for v in scalars])))
        subkeys = dict.fromkeys(k for v in values if isinstance(v, dict) for k in v)
        for sub in subkeys:
            out.append((f"{name}_{sub}", infer_array([plain(v.get(sub)) if isinstance(v, dict) else None for v in values])))
        return out
    return [(name, infer_array([plain(v) for v in values]))]


def columns_to_table(columns: dict[str, list[Any]], declared: dict[str, str], strict: Collection[str] | None = None) -> pa.Table:
    """Columns of Python values to an Arrow table; ValueError names a strict column that does not fit.

    `strict=None` makes every declared column strict; a non-strict one that does not fit is inferred.
    """
    arrays: list[tuple[str, pa.Array]] = []
    for name, values in columns.items():
        if name not in declared:
            arrays.extend(_inferred_arrays(name, values))
            continue
        try:
            arrays.append((name, _declared_array(name, values, declared[name])))
        except ValueError:
            if strict is None or name in strict:
                raise
            arrays.extend(_inferred_arrays(name, values))
    return pa.Table.from_arrays([a for _, a in arrays], names=[n for n, _ in arrays])


def _common_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    if {a, b} == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()


def _to_type(array: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if array.type == target:
        return array
    if target == pa.string() and pa.types.is_boolean(array.type):
        return pa.chunked_array([pa.array([None if v is None else ("true" if v else "false") for v in array.to_pylist()], pa.string())])
    return array.cast(target)


def concat(tables: list[pa.Table]) -> pa.Table:
    """Stack shard tables whose columns and types differ (old rows + re-read rows)."""
    tables = [t for t in tables if t.num_columns]
    if not tables:
        return pa.table({})
    target: dict[str, pa.DataType] = {}
    for table in tables:
        for field in table.schema:
            target[field.name] = _common_type(target[field.name], field.type) if field.name in target else field.type
    aligned = []
    for table in tables:
        present = set(table.column_names)
        columns = [
            _to_type(table.column(name), kind) if name in present else pa.chunked_array([pa.nulls(table.num_rows, kind)])
            for name, kind in target.items()
        ]
        aligned.append(pa.Table.from_arrays(columns, names=list(target)))
    return pa.concat_tables(aligned)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows to columns. Training writes every epoch with the same keys in the same order, which
    lets zip transpose in C; rows that differ take the general path."""
    first = list(rows[0])
    if all(list(row) == first for row in rows):
        return dict(zip(first, map(list, zip(*(row.values() for row in rows)))))
    names = dict.fromkeys(first)
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}


def epoch_table(rows: list[dict[str, Any]], run_id: str, rel: str) -> Any:
    """The run's epochs as an Arrow table, built column by column (a million epochs stay fast)."""
    columns = _columns(rows)
    columns.pop("run_id", None)
    columns.pop("path", None)
    try:
        return columns_to_table({"run_id": [run_id] * len(rows), "path": [rel] * len(rows), **columns}, EPOCH_COLUMNS)
    except ValueError as exc:
        raise CorruptRun(f"{EPOCHS_FILE}: {exc}") from None
