"""`Store`: SQL over a results store, answered by an embedded DuckDB from a cache of the run folders.

Opening a store refreshes the cache (re-reading only changed run folders) and creates two views,
`runs` and `epochs`. Nothing here writes to a run folder: the cache lives in its own folder and can
be deleted at any time.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import duckdb

from seedbench.errors import StoreError
from seedbench.store.cache import CACHE_DIRNAME, Manifest, RefreshStats, load_manifest
from seedbench.store.cache import refresh as refresh_cache
from seedbench.store.sql import check_statement, create_views, explain, ident, literal

if TYPE_CHECKING:  # pandas costs 0.3 s to import; `seedbench query` output does not need it
    import pandas as pd

ExportFormat = Literal["parquet", "csv"]
ExportTable = Literal["runs", "epochs", "both"]
ORDER = {"runs": "path", "epochs": "path, epoch"}
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
        if not self.path.is_dir():
            raise StoreError(f"store {self.path} does not exist; run `seedbench sweep` first or pass --store DIR")
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir(self.path)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.skipped: list[Skipped] = []
        self.last_refresh: RefreshStats | None = None
        self._columns: dict[str, list[str]] = {}
        self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(":memory:")
        self._load(refresh=refresh, rebuild=rebuild)
        if warn is not None and self.skipped:
            first = self.skipped[0]
            warn(f"skipped {len(self.skipped)} unreadable run folder(s), e.g. {first.path}: {first.reason}")

    # -- cache and views -------------------------------------------------------------------------

    def _load(self, refresh: bool = True, rebuild: bool = False) -> None:
        manifest = None if (refresh or rebuild) else load_manifest(self.cache_dir)
        unreadable: dict[str, str] = {}
        if manifest is None:
            manifest, self.last_refresh, unreadable = refresh_cache(self.path, self.cache_dir, rebuild=rebuild)
        try:
            self._columns = self._create_views(manifest)
        except duckdb.Error:  # a damaged cache file: the folders have everything to rebuild it
            manifest, self.last_refresh, unreadable = refresh_cache(self.path, self.cache_dir, rebuild=True)
            self._columns = self._create_views(manifest)
        skipped = {**manifest.skipped(), **unreadable}
        self.skipped = [Skipped(self.path / rel, reason) for rel, reason in sorted(skipped.items())]

    def _create_views(self, manifest: Manifest) -> dict[str, list[str]]:
        return create_views(
            self.con,
            self.path,
            [self.cache_dir / name for _, name in sorted(manifest.runs_files.items())],
            [self.cache_dir / name for _, name in sorted(manifest.epochs_files.items())],
        )

    def refresh(self, rebuild: bool = False) -> RefreshStats:
        """Pick up runs written since opening (a sweep still going on); `rebuild` re-reads every folder."""
        self._load(refresh=True, rebuild=rebuild)
        assert self.last_refresh is not None
        return self.last_refresh

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the views, for callers that want relations or Arrow."""
        if self._con is None:
            raise StoreError(f"store {self.path} is closed")
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
        """Run one SELECT over the views; any SQL problem is a one-line StoreError naming the columns."""
        return self._run(sql, params, lambda result: result.df())

    def fetch(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Column names and Python rows: NULL stays None and NaN stays nan, which pandas would merge."""
        return self._run(sql, params, lambda result: ([d[0] for d in result.description], result.fetchall()))

    def _run(self, sql: str, params: Sequence[Any] | dict[str, Any] | None, fetch: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        check_statement(sql, self._columns)
        for attempt in (1, 2):
            try:
                return fetch(self.con.execute(sql, params) if params is not None else self.con.execute(sql))
            except duckdb.IOException as exc:
                if attempt == 2 or not _missing_file(exc):
                    raise explain(exc, self._columns) from None
                # a shard file was replaced and collected after this Store opened its views
                self._load(refresh=True)
            except duckdb.Error as exc:
                raise explain(exc, self._columns) from None
        raise AssertionError("unreachable")

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
        options = "FORMAT parquet" if format == "parquet" else "FORMAT csv, HEADER true"
        for view, target in zip(views, targets):
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                self.con.execute(f"COPY (SELECT * FROM {ident(view)} ORDER BY {ORDER[view]}) TO {literal(str(tmp))} ({options})")
                os.replace(tmp, target)
            except duckdb.Error as exc:
                raise StoreError(f"export of {view} to {target} failed: {' '.join(str(exc).split())}") from None
            except OSError as exc:
                raise StoreError(f"export of {view} to {target} failed: {exc.strerror or exc}") from None
            finally:
                tmp.unlink(missing_ok=True)
        return targets

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        runs = self.last_refresh.runs if self.last_refresh else "?"
        return f"Store({str(self.path)!r}, runs={runs}, skipped={len(self.skipped)})"


def _missing_file(exc: duckdb.Error) -> bool:
    return "No files found" in str(exc) or "No such file" in str(exc)


def open_store_db(path: str | os.PathLike, **kwargs: Any) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the `runs` and `epochs` views of the store at `path`."""
    return Store(path, **kwargs).con
