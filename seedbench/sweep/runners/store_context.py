"""Where a sweep's records live: the machinable project, its Storage folder and its Index database.

The Storage folders are the source of truth; the Index (SQLite) is a rebuildable catalogue that only
the driver writes. With `--store DIR` both live under DIR unless $MACHINABLE_INDEX points the index
elsewhere (on a cluster: index on the driver's local disk, storage on the shared filesystem).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seedbench.sweep.presets import catalog_path


def project_root() -> Path:
    return catalog_path().parent


def store_dir(store: str | os.PathLike | None) -> Path:
    return Path(store).expanduser().resolve() if store else project_root() / "storage"


def index_database(store: str | os.PathLike | None) -> str | None:
    if os.environ.get("MACHINABLE_INDEX"):
        return os.environ["MACHINABLE_INDEX"]
    if store:
        return str(store_dir(store) / ".machinable.sqlite")
    return None  # machinable's default: <project>/.machinable.sqlite


@contextlib.contextmanager
def open_project() -> Iterator[None]:
    """Enter machinable's project alone (components importable), for work that reads the store only."""
    from machinable import Project

    root = str(project_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    with Project(root):
        yield


@contextlib.contextmanager
def open_store(store: str | os.PathLike | None = None) -> Iterator[Path]:
    """Enter the project, storage and index of `store` (all of machinable's context in one place)."""
    from machinable import Index, Project, Storage

    root = str(project_root())
    if root not in sys.path:  # components import each other as `components.<name>`
        sys.path.insert(0, root)
    directory = store_dir(store)
    directory.mkdir(parents=True, exist_ok=True)
    database = index_database(store)
    if database and Path(database) == directory / ".machinable.sqlite":
        relocate_index(Path(database), directory)
    with contextlib.ExitStack() as stack:
        stack.enter_context(Project(root))
        stack.enter_context(Storage({"directory": str(directory)}))
        if database:
            stack.enter_context(Index({"database": database}))
        yield directory


FILE_URI = "file://"


def _old_root(paths: list[Path], directory: Path) -> Path | None:
    """The folder a moved or copied store used to live in: the ancestor whose part below it exists here."""
    for path in paths:
        for ancestor in path.parents:
            if ancestor == path.parent:
                continue  # the folder itself is never a store's top level
            if (directory / path.relative_to(ancestor)).is_dir():
                return ancestor
    return None


def read_index(database: Path) -> Any:
    """A connection that reads the index and writes nothing: not even SQLite's -wal/-shm files.

    Without a write-ahead log beside it the file is opened immutable (no locks, no side files);
    with one (a sweep is writing right now) read-only, so that its recent rows are seen.
    """
    import sqlite3

    wal = Path(str(database) + "-wal")
    mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
    return sqlite3.connect(f"file:{database}?{mode}", uri=True, timeout=60)


def moved_from(database: Path, directory: Path) -> Path | None:
    """The folder this store was moved or copied from, if its index still points there; reads only."""
    import sqlite3

    if not database.is_file():
        return None
    inside = str(directory) + os.sep
    with contextlib.closing(read_index(database)) as db:
        try:
            rows = db.execute("SELECT storage_uri, local_uri FROM 'index' WHERE kind != 'Project'").fetchall()
        except sqlite3.Error:
            return None  # not machinable's index (or a newer schema): leave it to machinable
    paths = [
        Path(uri[len(FILE_URI) :])
        for row in rows
        for uri in row
        if isinstance(uri, str) and uri.startswith(FILE_URI) and not uri[len(FILE_URI) :].startswith(inside)
    ]
    return _old_root(paths, directory) if paths else None


def moved_uri(uri: str | None, old: Path | None, directory: Path) -> str | None:
    """`uri` re-pointed from the store's old folder to `directory`."""
    prefix = FILE_URI + str(old) + os.sep
    if old is not None and isinstance(uri, str) and uri.startswith(prefix):
        return FILE_URI + str(directory / uri[len(prefix) :])
    return uri


def relocate_index(database: Path, directory: Path) -> int:
    """Point the store's own index at this copy of the store, if the store was moved or copied.

    machinable records every folder as an absolute file:// URI. Without this, a store copied to a new
    path would look its cells up in the store it was copied from: reuse folders that are not in it,
    judge a cell by another store's record, even prepare reruns there. Rows whose folders are already
    under `directory` are left alone; returns how many rows were rewritten.
    """
    import sqlite3

    old = moved_from(database, directory)
    if old is None:
        return 0
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db:
        rows = db.execute("SELECT rowid, storage_uri, local_uri FROM 'index' WHERE kind != 'Project'").fetchall()
        updates = [
            (moved_uri(storage, old, directory), moved_uri(local, old, directory), rowid)
            for rowid, storage, local in rows
            if (moved_uri(storage, old, directory), moved_uri(local, old, directory)) != (storage, local)
        ]
        with db:
            db.executemany("UPDATE 'index' SET storage_uri = ?, local_uri = ? WHERE rowid = ?", updates)
    return len(updates)


MIN_FREE_BYTES = 64 * 1024**2  # below this a sweep would fail half-way through writing its records


def check_store_writable(store: str | os.PathLike | None) -> Path:
    """Refuse, in one line and before anything is written, a store that is read-only, not a folder or full."""
    import shutil

    from seedbench.errors import StoreError

    directory = store_dir(store)
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise StoreError(f"store {directory}: {probe} is a file, not a folder; pass --store with a folder path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"store {directory}: {probe} is read-only for this user; make it writable or pass --store DIR elsewhere")
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:
        raise StoreError(f"store {directory}: the disk is full ({free // 1024**2} MiB free); free space or pass --store DIR on another disk")
    return directory


def _count(database: Path, where: str, params: tuple = ()) -> int:
    import sqlite3

    if not Path(database).is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            row = db.execute(f"SELECT count(*) FROM 'index' WHERE kind = 'Interface' AND hidden = 0 AND {where}", params).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def legacy_runs(database: Path) -> int:
    """Runs in this index made by seedbench 0.1, whose components all derived from components/trial.py."""
    return _count(database, "inherits_json LIKE ?", ('%"components.trial"%',))


def unmigrated_cells(database: Path) -> int:
    """Cells of the one-component layout (components/cell.py), which `seedbench store migrate` re-keys."""
    return _count(database, "module = 'components.cell'")


LEGACY_NOTE = (
    "this store holds {n} cells made by seedbench 0.1 (one component per method); report, compare, query and plot "
    "still read them, but new sweeps do not reuse them: to keep the old results apart, give new sweeps another --store"
)
UNMIGRATED_NOTE = (
    "this store holds {n} cells recorded before each method had its own component; new sweeps do not reuse them "
    "until `seedbench store migrate{store}` re-keys them (report, compare, query and plot read them either way)"
)


def store_notes(database: Path, store: str | os.PathLike | None = None) -> list[str]:
    """What a sweep says about records in the store it will not reuse as they are."""
    notes = []
    old = legacy_runs(database)
    if old:
        notes.append(LEGACY_NOTE.format(n=old))
    unmigrated = unmigrated_cells(database)
    if unmigrated:
        notes.append(UNMIGRATED_NOTE.format(n=unmigrated, store=f" --store {store_dir(store)}" if store else ""))
    return notes
