"""The `runs` and `epochs` views over the cache's shard files, the read-only connection user SQL runs
in, and one-line explanations of SQL errors.

Two connections, two roles. A private *loader* connection holds views that read the Parquet shards
(only seedbench's own fixed SQL ever runs there). User SQL - `seedbench query`, `--where`, every
analysis command - runs in a *locked* connection that has no file system at all: DuckDB's own
settings (`enable_external_access = false`, no extension autoload/autoinstall, no spilling, then
`lock_configuration = true`) refuse COPY, EXPORT, ATTACH, INSTALL, LOAD, read_csv/read_text/
read_parquet of any path, and any SET that would undo them. The views there read Arrow tables the
loader handed over. The statement-type check is a second, independent layer.

Why not views over the shard files with `allowed_paths`? DuckDB's allow-lists grant write access as
well as read access: `COPY ... TO '<shard>' (USE_TMP_FILE false)` - even inside an EXPLAIN ANALYZE,
which the statement check lets through - overwrote the store's own cache in DuckDB 2.0.0.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import duckdb

from seedbench.errors import StoreError
from seedbench.store.schema import EPOCH_COLUMNS, STRICT_RUN_COLUMNS, ordered, run_columns

# SELECT covers DESCRIBE, SUMMARIZE, SHOW; an EXPLAIN passes when what it explains is one of these
ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT})
# Settings of the connection user SQL runs in; lock_configuration must come last (it freezes the rest).
LOCKED_SETTINGS = {
    "enable_external_access": False,  # no files, no network: COPY, EXPORT, ATTACH, INSTALL, read_* all refused
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,  # a query cannot reach the caller's Python variables
    "temp_directory": "",  # no spill files: a query that does not fit in memory fails instead of writing
    "lock_configuration": True,  # no SET/RESET/PRAGMA can change any of the above
}
# "EXPLAIN", "EXPLAIN ANALYZE", "EXPLAIN (FORMAT json)" and comments between them: what precedes the explained statement
_GAP = r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_EXPLAIN_PREFIX = re.compile(rf"^{_GAP}EXPLAIN\b{_GAP}(?:ANALY[SZ]E\b{_GAP})?(?:\((?:[^()']|'[^']*')*\){_GAP})?", re.IGNORECASE | re.DOTALL)
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
    source = f"read_parquet([{', '.join(literal(str(f)) for f in files)}], union_by_name = true)" if files else ""
    return _view_over(con, view, source, declared, root, strict)


def _view_over(
    con: duckdb.DuckDBPyConnection, view: str, source: str, declared: dict[str, str], root: Path, strict: Collection[str] | None
) -> list[str]:
    present: dict[str, str] = {}
    if source:
        present = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    select = ", ".join(_select_list(present, declared, root.as_posix(), strict))
    body = f"SELECT {select} FROM {source}" if source else f"SELECT {select} WHERE false"
    con.execute(f"CREATE OR REPLACE VIEW {ident(view)} AS {body}")
    return [r[0] for r in con.execute(f"DESCRIBE {ident(view)}").fetchall()]


def create_views(con: duckdb.DuckDBPyConnection, root: Path, runs_files: list[Path], epochs_files: list[Path]) -> dict[str, list[str]]:
    return {
        "runs": create_view(con, "runs", runs_files, run_columns(), root, STRICT_RUN_COLUMNS),
        "epochs": create_view(con, "epochs", epochs_files, EPOCH_COLUMNS, root),
    }


def create_memory_views(con: duckdb.DuckDBPyConnection, root: Path, tables: dict[str, Any]) -> dict[str, list[str]]:
    """The same views over Arrow tables held in memory (the cache could not be written: seedbench.store.cache)."""
    sources = {}
    for view, table in tables.items():
        if table is not None and table.num_columns:
            con.register(f"__memory_{view}", table)
            sources[view] = ident(f"__memory_{view}")
    return {
        "runs": _view_over(con, "runs", sources.get("runs", ""), run_columns(), root, STRICT_RUN_COLUMNS),
        "epochs": _view_over(con, "epochs", sources.get("epochs", ""), EPOCH_COLUMNS, root, None),
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def columns_hint(columns: dict[str, list[str]]) -> str:
    return "; ".join(f"{view} has: {', '.join(names)}" for view, names in columns.items())


def _first_line(message: str) -> str:
    """DuckDB's message without the echoed query and caret lines."""
    return _one_line(message.strip().split("\n", 1)[0])


def locked_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that cannot touch files, extensions or its own settings (see LOCKED_SETTINGS)."""
    return duckdb.connect(":memory:", config=dict(LOCKED_SETTINGS))


def loader_connection() -> duckdb.DuckDBPyConnection:
    """The private connection that reads the shard files; only seedbench's fixed SQL runs in it."""
    # no spill files either: reading the store never writes (it would fail on a full disk or a read-only store)
    return duckdb.connect(":memory:", config={"autoload_known_extensions": False, "autoinstall_known_extensions": False, "temp_directory": ""})


def check_statement(sql: str, columns: dict[str, list[str]]) -> None:
    """One read-only statement only: a query must never write files or change the session.

    An EXPLAIN is allowed only around a SELECT: EXPLAIN ANALYZE runs the statement it explains.
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise explain(exc, columns) from None
    if len(statements) != 1:
        raise StoreError(f"give exactly one SQL statement (got {len(statements)}); {columns_hint(columns)}")
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        kind = _explained_kind(statements[0].query)
    if kind not in ALLOWED_STATEMENTS:
        # DuckDB files INSTALL (and FORCE INSTALL) under LOAD: name what the user typed
        typed = statements[0].query.split()
        shown = kind.name
        if kind.name == "LOAD" and typed and typed[0].upper() in ("INSTALL", "FORCE"):
            shown = " ".join(typed[:2] if typed[0].upper() == "FORCE" else typed[:1]).upper()
        raise StoreError(f"only SELECT queries are allowed (got {shown}); use `seedbench export` to write files; {columns_hint(columns)}")


def _explained_kind(text: str) -> duckdb.StatementType:
    """The type of the statement an EXPLAIN wraps; EXPLAIN itself when it cannot be isolated (then refused)."""
    match = _EXPLAIN_PREFIX.match(text)
    if match is None:
        return duckdb.StatementType.EXPLAIN
    try:
        inner = duckdb.extract_statements(text[match.end() :])
    except duckdb.Error:
        return duckdb.StatementType.EXPLAIN
    return inner[0].type if len(inner) == 1 else duckdb.StatementType.EXPLAIN


def where_sql(where: str, columns: dict[str, list[str]] | None = None) -> str:
    """A `--where` filter as one parenthesised SQL expression, or a one-line StoreError.

    The text is parsed as a single expression and re-rendered from the parse tree, so it cannot
    close the surrounding query, stack a statement (`1=1; COPY ...`), add a UNION, ORDER BY or
    LIMIT, or comment out what follows it. Subqueries stay possible; they run read-only.
    """
    hint = f"; {columns_hint(columns)}" if columns else ""
    if not where or not where.strip():
        raise StoreError(f"--where is empty; give a condition such as \"status = 'finished' AND model = 'fc'\"{hint}")
    try:
        expression = duckdb.SQLExpression(where)
    except duckdb.Error as exc:
        reason = _first_line(str(exc)).removeprefix("Parser Error: ")
        raise StoreError(f"--where must be one SQL condition, e.g. \"status = 'finished'\" ({reason}){hint}") from None
    return f"({expression})"


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
    if isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in message:
        return StoreError(
            f"refused: queries may only read the runs and epochs views, not files, extensions or settings "
            f"({_first_line(message)}); use `seedbench export` to write files; {hint}"
        )
    match = _UNKNOWN_TABLE.search(message)
    if match:
        return StoreError(f"unknown table {match.group(1)!r}: query the views runs and epochs; {hint}")
    if isinstance(exc, duckdb.ParserException):
        return StoreError(f"bad SQL: {_first_line(message).removeprefix('Parser Error: ')}; {hint}")
    return StoreError(f"query failed: {_first_line(message)}; {hint}")
