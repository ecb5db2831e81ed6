"""File locks that make concurrent sweeps on one store safe.

Two locks, both `flock`s through `filelock` (released by the kernel when their process dies, so a
SIGKILLed driver or worker never leaves a stale lock behind):

- the *index lock* (one per machinable index database) is held by a driver while it plans a grid and
  materialises its pending cells: machinable's `Index.materialize` is check-then-insert without a
  unique constraint, so two drivers materialising the same cell at once would create two records;
- a *cell lock* (one per cell, under the store) is held by whichever process is training the cell.
  A second sweep that reaches a cell someone else is training waits for it and then reuses the result
  instead of training it again into the same folder.

On a cluster the store is on a shared filesystem; NFSv4 and most cluster filesystems support `flock`.

Also here: `keep_index_open`, which holds one idle reader on the index database while a driver
prepares cells. machinable opens and closes a connection per operation; without another reader, each
close checkpoints and deletes the SQLite WAL (four fdatasyncs), which made preparing a cell ~10x slower.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_DIR = ".seedbench/locks"


def _lock(path: Path, timeout: float) -> FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=timeout, thread_local=False)


@contextlib.contextmanager
def index_lock(database: Path, timeout: float = -1) -> Iterator[None]:
    """Hold the lock of one index database (a file beside it) while planning and materialising;
    blocks while another driver does the same."""
    with _lock(Path(str(database) + ".lock"), timeout):
        yield


def cell_lock_path(store: str | os.PathLike, uuid: str) -> Path:
    return Path(store) / LOCK_DIR / f"{uuid}.lock"


def try_cell_lock(store: str | os.PathLike, uuid: str) -> FileLock | None:
    """Take the cell's lock without waiting; None when another process is training the cell."""
    lock = _lock(cell_lock_path(store, uuid), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock


def wait_cell_lock(store: str | os.PathLike, uuid: str) -> FileLock:
    lock = _lock(cell_lock_path(store, uuid), timeout=-1)
    lock.acquire()
    return lock


def cell_is_locked(store: str | os.PathLike, uuid: str) -> bool:
    """Whether some process holds the cell's lock right now (a momentary probe)."""
    path = cell_lock_path(store, uuid)
    if not path.exists():
        return False
    lock = try_cell_lock(store, uuid)
    if lock is None:
        return True
    lock.release()
    return False


def index_path(store: Path, database: str | None, project_dir: Path) -> Path:
    """The index database a driver writes: $MACHINABLE_INDEX / the store's, else machinable's default."""
    if database:
        database = database[len("sqlite:///") :] if database.startswith("sqlite:///") else database
        return Path(os.path.expanduser(database))
    return Path(project_dir) / ".machinable.sqlite"


# machinable finds an existing record with `(parent_id IS ? OR ...) AND identity_key=? AND
# predicate_key=?`; the OR keeps SQLite off its (parent_id, identity_key, predicate_key) index, so every
# cell it materialises scanned every stored cell (preparing a cell took 16 ms at 500 cells, 48 ms at
# 3,000). An index on the identity alone makes that look-up a search again.
LOOKUP_INDEX = "CREATE INDEX IF NOT EXISTS seedbench_identity_predicate ON 'index'(identity_key, predicate_key)"


@contextlib.contextmanager
def keep_index_open(path: Path) -> Iterator[None]:
    """Hold an idle reader on the index (see the module docstring), after adding LOOKUP_INDEX to it;
    a no-op if it cannot be opened."""
    connection = None
    try:
        if not Path(path).is_file():  # a new store: create the index now, so the reader holds it from the first cell
            from machinable.index import load

            load(str(path), create=True).close()
        if Path(path).is_file():
            connection = sqlite3.connect(str(path), timeout=5)
            with connection:
                connection.execute(LOOKUP_INDEX)
            connection.execute("SELECT count(*) FROM sqlite_master").fetchall()  # maps the WAL index
    except sqlite3.Error:
        connection = None
    try:
        yield
    finally:
        if connection is not None:
            connection.close()
