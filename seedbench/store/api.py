"""`Store`: SQL over a results store, answered by an embedded DuckDB from a cache of the run folders.

Opening a store refreshes the cache (re-reading only changed run folders) and creates two views,
`runs` and `epochs`. Nothing here writes to a run folder: the cache lives in its own folder and can
be deleted at any time.

Queries are read-only by construction, not only by inspection: user SQL runs in a DuckDB connection
with no file system access and a locked configuration (seedbench.store.sql.locked_connection). Each
view's rows are loaded into that connection from the shards, as an Arrow table, the first time a
query names the view; from then on the Store answers from that snapshot until `refresh()`.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import duckdb

from seedbench.errors import StoreError
from seedbench.store.cache import CACHE_DIRNAME, Manifest, RefreshStats, load_manifest
from seedbench.store.cache import refresh as refresh_cache
from seedbench.store.sql import (
    check_statement,
    create_memory_views,
    create_views,
    explain,
    ident,
    literal,
    loader_connection,
    locked_connection,
    where_sql,
)

if TYPE_CHECKING:  # pandas costs 0.3 s to import; `seedbench query` output does not need it
    import pandas as pd

ExportFormat = Literal["parquet", "csv"]
ExportTable = Literal["runs", "epochs", "both"]
ORDER = {"runs": "path", "epochs": "path, epoch"}
VIEWS = ("runs", "epochs")
T = TypeVar("T")


class StoreWarning(UserWarning):
    """Something in the store was skipped; the query still ran on the rest."""


@dataclass(frozen=True)
class Skipped:
    """A run folder left out of the views, and why (a one-line reason)."""

    path: Path
    reason: str


def _warn(message: str) -> None:
    warnings.warn(message, StoreWarning, stacklevel=3)  # points at the caller of Store(...)


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def default_cache_dir(store: Path) -> Path:
    """Beside the storage; for a store one cannot write to, under the user's cache folder."""
    beside = store / CACHE_DIRNAME
    if _writable_dir(beside):
        return beside
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    fallback = base / "seedbench" / "stores" / hashlib.sha1(str(store).encode()).hexdigest()[:16]
    if _writable_dir(fallback):
        return fallback
    raise StoreError(f"cannot write a cache for {store}: neither {beside} nor {fallback} is writable; pass cache_dir")


class Store:
    """A results store as two SQL views, `runs` and `epochs`.

    >>> store = Store("storage")
    >>> store.query("SELECT method, avg(test_acc) FROM runs WHERE status = 'finished' GROUP BY ALL")

    `skipped` lists the run folders left out (corrupt or half-written) with their reasons;
    `last_refresh` says what the cache refresh on opening re-read.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        refresh: bool = True,
        rebuild: bool = False,
        cache_dir: str | os.PathLike | None = None,
        warn: Callable[[str], None] | None = _warn,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"store {self.path} is a file, not a store folder; pass --store with the folder a sweep wrote")
        if not self.path.is_dir():
            raise StoreError(f"store {self.path} does not exist; run `seedbench sweep` first or pass --store DIR")
        self.cache_dir: Path | None = None  # None: no cache can be written anywhere; queries answer from memory
        try:
            self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir(self.path)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except (StoreError, OSError):  # a query never needs to write: seedbench.store.cache builds the views in memory
            self.cache_dir = None
        self.memory_reason: str | None = None  # why the views are in memory (the cache could not be written), else None
        self.skipped: list[Skipped] = []
        self.last_refresh: RefreshStats | None = None
        self._columns: dict[str, list[str]] = {}
        self._loader: duckdb.DuckDBPyConnection | None = None  # reads the shard files; never runs user SQL
        self._con: duckdb.DuckDBPyConnection | None = None  # runs user SQL; no file access (locked)
        self._loaded: set[str] = set()
        self._closed = False
        self._load(refresh=refresh, rebuild=rebuild)
        if warn is not None and self.skipped:
            first = self.skipped[0]
            warn(f"skipped {len(self.skipped)} unreadable run folder(s), e.g. {first.path}: {first.reason}")
        if warn is not None and self.memory_reason:
            where = self.cache_dir or "beside the store or in the user's cache folder"
            warn(
                f"the query cache ({where}) cannot be written ({self.memory_reason}): answered from the run folders, "
                "without caching; free space (or make the store writable) to make queries fast again"
            )

    # -- cache and views -------------------------------------------------------------------------

    def _load(self, refresh: bool = True, rebuild: bool = False) -> None:
        """(Re)open the loader's views on the current cache and start a fresh, empty locked connection."""
        manifest = None if (refresh or rebuild) else load_manifest(self.cache_dir)
        unreadable: dict[str, str] = {}
        if manifest is None:
            manifest, self.last_refresh, unreadable = refresh_cache(self.path, self.cache_dir, rebuild=rebuild)
        loader = loader_connection()
        try:
            columns = self._create_views(loader, manifest)
        except duckdb.Error:  # a damaged cache file: the folders have everything to rebuild it
            manifest, self.last_refresh, unreadable = refresh_cache(self.path, self.cache_dir, rebuild=True)
            columns = self._create_views(loader, manifest)
        self.memory_reason = manifest.memory_reason
        self._close_connections()
        self._loader, self._con, self._loaded, self._columns = loader, locked_connection(), set(), columns
        skipped = {**manifest.skipped(), **unreadable}
        self.skipped = [Skipped(self.path / rel, reason) for rel, reason in sorted(skipped.items())]

    def _create_views(self, loader: duckdb.DuckDBPyConnection, manifest: Manifest) -> dict[str, list[str]]:
        if manifest.memory is not None or self.cache_dir is None:
            return create_memory_views(loader, self.path, manifest.memory or {})
        return create_views(
            loader,
            self.path,
            [self.cache_dir / name for _, name in sorted(manifest.runs_files.items())],
            [self.cache_dir / name for _, name in sorted(manifest.epochs_files.items())],
        )

    def _from_shards(self, run: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run seedbench's own SQL on the loader; reopen once if a shard was collected meanwhile."""
        for attempt in (1, 2):
            if self._closed or self._loader is None:
                raise StoreError(f"store {self.path} is closed")
            try:
                return run(self._loader)
            except duckdb.IOException as exc:
                if attempt == 2 or not _missing_file(exc):
                    raise
                # a shard file was replaced and collected after this Store opened its views
                self._load(refresh=True)
        raise AssertionError("unreachable")

    def _ensure_loaded(self, views: Collection[str]) -> duckdb.DuckDBPyConnection:
        """Give the locked connection the rows of `views` (from the shards, as Arrow), once each."""
        while missing := [view for view in VIEWS if view in views and view not in self._loaded]:
            view = missing[0]
            table = self._from_shards(lambda loader: loader.sql(f"SELECT * FROM {ident(view)}").to_arrow_table())
            # _from_shards may have reopened everything (then _loaded is empty again and the loop goes on)
            if self._closed or self._con is None:
                raise StoreError(f"store {self.path} is closed")
            self._con.register(f"__seedbench_{view}", table)  # registered Arrow data is read-only in DuckDB
            self._con.execute(f"CREATE VIEW {ident(view)} AS SELECT * FROM {ident(f'__seedbench_{view}')}")
            self._loaded.add(view)
        if self._closed or self._con is None:
            raise StoreError(f"store {self.path} is closed")
        return self._con

    def _close_connections(self) -> None:
        for con in (self._con, self._loader):
            if con is not None:
                con.close()
        self._con = self._loader = None

    def refresh(self, rebuild: bool = False) -> RefreshStats:
        """Pick up runs written since opening (a sweep still going on); `rebuild` re-reads every folder."""
        self._load(refresh=True, rebuild=rebuild)
        assert self.last_refresh is not None
        return self.last_refresh

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The read-only DuckDB connection holding both views, for callers that want relations or Arrow.

        It can read nothing but the views and cannot change its own settings (see `query`).
        """
        if self._closed or self._con is None:
            raise StoreError(f"store {self.path} is closed")
        if len(self._loaded) < len(VIEWS):
            self._ensure_loaded(VIEWS)
        return self._con

    def columns(self, view: str = "runs") -> list[str]:
        if view not in self._columns:
            raise StoreError(f"unknown view {view!r}; views: {', '.join(self._columns)}")
        return list(self._columns[view])

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    # -- queries ---------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run one SELECT over the views; any SQL problem is a one-line StoreError naming the columns.

        The statement runs in a connection that cannot read or write files, install or load
        extensions, attach databases or change settings; COPY, EXPORT, CREATE, INSERT, SET and the
        like are refused before it runs as well.
        """
        return self._run(sql, params, lambda result: result.df())

    def fetch(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Column names and Python rows: NULL stays None and NaN stays nan, which pandas would merge."""
        return self._run(sql, params, lambda result: ([d[0] for d in result.description], result.fetchall()))

    def where(self, condition: str) -> str:
        """A user's `--where` text as one parenthesised SQL expression (see sql.where_sql)."""
        return where_sql(condition, self._columns)

    def select(self, view: str = "runs", where: str | None = None) -> pd.DataFrame:
        """Every row of `view`, filtered by a `--where` condition that can only be an expression."""
        if view not in VIEWS:
            raise StoreError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")
        condition = f" WHERE {self.where(where)}" if where is not None else ""
        return self.query(f"SELECT * FROM {ident(view)}{condition} ORDER BY {ORDER[view]}")

    def _run(self, sql: str, params: Sequence[Any] | dict[str, Any] | None, fetch: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        check_statement(sql, self._columns)
        named = _named_views(sql)
        try:
            con = self._ensure_loaded(named)
            return fetch(con.execute(sql, params) if params is not None else con.execute(sql))
        except duckdb.CatalogException as exc:
            if self._loaded >= set(VIEWS) or not _UNKNOWN_VIEW.search(str(exc)):
                raise explain(exc, self._columns) from None
        except duckdb.Error as exc:
            raise explain(exc, self._columns) from None
        try:  # the query reached a view without naming it (e.g. query_table('ep' || 'ochs')): load all
            con = self._ensure_loaded(VIEWS)
            return fetch(con.execute(sql, params) if params is not None else con.execute(sql))
        except duckdb.Error as exc:
            raise explain(exc, self._columns) from None

    def runs(self) -> pd.DataFrame:
        return self.query("SELECT * FROM runs ORDER BY path")

    def epochs(self) -> pd.DataFrame:
        return self.query("SELECT * FROM epochs ORDER BY path, epoch")

    def export(self, out: str | os.PathLike, format: ExportFormat = "parquet", table: ExportTable = "runs") -> list[Path]:
        """Write views to files for other tools; with table='both', `out` is a folder.

        Files appear whole or not at all (written beside, then renamed).
        """
        if format not in ("parquet", "csv"):
            raise StoreError(f"unknown export format {format!r}; use parquet or csv")
        if table not in ("runs", "epochs", "both"):
            raise StoreError(f"unknown table {table!r}; use runs, epochs or both")
        out = Path(out).expanduser().resolve()
        views = ["runs", "epochs"] if table == "both" else [table]
        if table == "both" or out.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            targets = [out / f"{view}.{format}" for view in views]
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            targets = [out]
        for target in targets:  # renaming over /dev/null or a pipe would replace it (as root: the device itself)
            if target.exists() and not target.is_file():
                raise StoreError(f"export to {target}: exists and is not a regular file; choose a file name")
        options = "FORMAT parquet" if format == "parquet" else "FORMAT csv, HEADER true"
        for view, target in zip(views, targets):
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            copy = f"COPY (SELECT * FROM {ident(view)} ORDER BY {ORDER[view]}) TO {literal(str(tmp))} ({options})"
            try:
                # the loader writes (fixed SQL, our own path); the connection user SQL runs in cannot
                self._from_shards(lambda loader: loader.execute(copy))
                os.replace(tmp, target)
            except duckdb.Error as exc:
                raise StoreError(f"export of {view} to {target} failed: {' '.join(str(exc).split())}") from None
            except OSError as exc:
                raise StoreError(f"export of {view} to {target} failed: {exc.strerror or exc}") from None
            finally:
                tmp.unlink(missing_ok=True)
        return targets

    def close(self) -> None:
        self._close_connections()
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        runs = self.last_refresh.runs if self.last_refresh else "?"
        return f"Store({str(self.path)!r}, runs={runs}, skipped={len(self.skipped)})"


def _missing_file(exc: duckdb.Error) -> bool:
    return "No files found" in str(exc) or "No such file" in str(exc)


_VIEW_WORDS = {view: re.compile(rf"\b{view}\b", re.IGNORECASE) for view in VIEWS}
_UNKNOWN_VIEW = re.compile(r"Table with name \"?(runs|epochs)\"? does not exist", re.IGNORECASE)


def _named_views(sql: str) -> set[str]:
    """The views a query names (a word match: a false hit only loads a view for nothing).

    A query naming neither (SHOW TABLES, duckdb_views()) gets both, so it sees what the store has.
    """
    named = {view for view, pattern in _VIEW_WORDS.items() if pattern.search(sql)}
    return named or set(VIEWS)


def open_store_db(path: str | os.PathLike, **kwargs: Any) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the `runs` and `epochs` views of the store at `path`."""
    return Store(path, **kwargs).con
