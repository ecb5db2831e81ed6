"""The `runs` and `epochs` views over the cache's shard files, and one-line explanations of SQL errors.

Views read the Parquet shards at query time (only the columns a query touches), so opening a store
costs a directory scan, not a load. Declared columns are always present with their declared type.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from pathlib import Path

import duckdb

from seedbench.errors import StoreError
from seedbench.store.schema import EPOCH_COLUMNS, STRICT_RUN_COLUMNS, ordered, run_columns

ALLOWED_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}  # SELECT covers DESCRIBE, SUMMARIZE, SHOW
_UNKNOWN_COLUMN = (
    re.compile(r'Referenced column "([^"]+)" not found'),
    re.compile(r'does not have a column named "([^"]+)"'),
)
_UNKNOWN_TABLE = re.compile(r'Table with name "?([^"\s!]+)"? does not exist')


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _select_list(present: dict[str, str], declared: dict[str, str], root: str, strict: Collection[str] | None) -> list[str]:
    """Declared columns in order (typed NULL when no run has them), then the data's extras.

    A non-strict column whose data did not fit its declared type keeps the wider type of the data.
    """
    exprs, taken = [], set()
    for column in ordered(list(present), declared):
        if column.lower() in taken:  # SQL names are case-insensitive: first one wins
            continue
        taken.add(column.lower())
        name = ident(column)
        if column not in present:
            expr = f"CAST(NULL AS {declared[column]})"
        elif column == "path":  # store-relative in the cache, so the store can move; absolute here
            expr = f"CASE WHEN {name} = '.' THEN {literal(root)} ELSE concat({literal(root + '/')}, {name}) END"
        elif column in declared and present[column] != declared[column] and (strict is None or column in strict or present[column] == '"NULL"'):
            expr = f"CAST({name} AS {declared[column]})"
        else:
            expr = name
        exprs.append(f"{expr} AS {name}")
    return exprs


def create_view(
    con: duckdb.DuckDBPyConnection, view: str, files: list[Path], declared: dict[str, str], root: Path, strict: Collection[str] | None = None
) -> list[str]:
    """(Re)create one view over `files` and return its columns."""
    present: dict[str, str] = {}
    source = ""
    if files:
        source = f"read_parquet([{', '.join(literal(str(f)) for f in files)}], union_by_name = true)"
        present = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    select = ", ".join(_select_list(present, declared, root.as_posix(), strict))
    body = f"SELECT {select} FROM {source}" if files else f"SELECT {select} WHERE false"
    con.execute(f"CREATE OR REPLACE VIEW {ident(view)} AS {body}")
    return [r[0] for r in con.execute(f"DESCRIBE {ident(view)}").fetchall()]


def create_views(con: duckdb.DuckDBPyConnection, root: Path, runs_files: list[Path], epochs_files: list[Path]) -> dict[str, list[str]]:
    return {
        "runs": create_view(con, "runs", runs_files, run_columns(), root, STRICT_RUN_COLUMNS),
        "epochs": create_view(con, "epochs", epochs_files, EPOCH_COLUMNS, root),
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def columns_hint(columns: dict[str, list[str]]) -> str:
    return "; ".join(f"{view} has: {', '.join(names)}" for view, names in columns.items())


def _first_line(message: str) -> str:
    """DuckDB's message without the echoed query and caret lines."""
    return _one_line(message.strip().split("\n", 1)[0])


def check_statement(sql: str, columns: dict[str, list[str]]) -> None:
    """One read-only statement only: a query must never write files or change the session."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise explain(exc, columns) from None
    if len(statements) != 1:
        raise StoreError(f"give exactly one SQL statement (got {len(statements)}); {columns_hint(columns)}")
    kind = statements[0].type
    if kind not in ALLOWED_STATEMENTS:
        raise StoreError(
            f"only SELECT queries are allowed (got {kind.name}); use `seedbench export` to write files; {columns_hint(columns)}"
        )


def explain(exc: duckdb.Error, columns: dict[str, list[str]]) -> StoreError:
    """A one-line StoreError naming the problem, a likely fix, and the columns one can use."""
    message = str(exc)
    hint = columns_hint(columns)
    for pattern in _UNKNOWN_COLUMN:
        match = pattern.search(message)
        if match:
            name = match.group(1)
            known = sorted({c for names in columns.values() for c in names})
            close = difflib.get_close_matches(name, known, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            return StoreError(f"unknown column {name!r}{guess}; {hint}")
    match = _UNKNOWN_TABLE.search(message)
    if match:
        return StoreError(f"unknown table {match.group(1)!r}: query the views runs and epochs; {hint}")
    if isinstance(exc, duckdb.ParserException):
        return StoreError(f"bad SQL: {_first_line(message).removeprefix('Parser Error: ')}; {hint}")
    return StoreError(f"query failed: {_first_line(message)}; {hint}")
