"""The Parquet cache beside a store: derived from the run folders, refreshed incrementally, disposable.

Layout of `<store>/.seedbench-cache/`:

    manifest.json                 fingerprints of every run folder, the current shard files
    runs-<shard>-<token>.parquet  `runs` rows of the folders hashed to <shard>
    epochs-<shard>-<token>.parquet
    .lock                         held while refreshing, so concurrent refreshes queue up

Run folders are hashed into a fixed number of shards by their path; a refresh re-reads only the
folders whose fingerprints changed and rewrites only their shards, under new names. Shard files are
never modified in place: a reader that opened views on the previous manifest keeps reading
consistent files, and replaced files are deleted only after a grace period.

A query never needs to write: when the cache cannot be written (a full disk, a read-only store or
cache folder), the refresh keeps what it built in memory instead - the shards it re-read, plus the
unchanged shards read from their files - and the views are answered from that (`Manifest.memory`).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedbench.errors import StoreError
from seedbench.record import EPOCHS_FILE, RUN_FILE
from seedbench.store.rows import CorruptRun, coerce_row, flatten_record, load_run_record, parse_epochs
from seedbench.store.scan import scan
from seedbench.store.schema import STRICT_RUN_COLUMNS, run_types

if TYPE_CHECKING:  # pyarrow is imported only when folders are read: an up-to-date open skips it
    import pyarrow as pa

CACHE_DIRNAME = ".seedbench-cache"
MANIFEST = "manifest.json"
FORMAT = 1
SHARDS = 64
GRACE_SECONDS = 600.0  # how long a replaced shard file stays readable for views opened before
LOCK_TIMEOUT_SECONDS = 600.0

Sigs = list  # [run.json signature | None, epochs.jsonl signature | None]


# What the cache knows of one run folder: [run.json signature, epochs.jsonl signature, skip reason].
# Plain lists, not objects: a manifest of 10,000 entries loads in a few milliseconds this way.
Entry = list


@dataclass
class Manifest:
    shards: int = SHARDS
    runs_files: dict[int, str] = field(default_factory=dict)
    epochs_files: dict[int, str] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)
    retired: dict[str, float] = field(default_factory=dict)  # replaced file -> when
    # not saved: set when the cache could not be written; the views' rows ("runs", "epochs") built in memory
    memory: dict[str, pa.Table] | None = None
    memory_reason: str | None = None  # why, in a few words (e.g. "No space left on device")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "shards": self.shards,
            "files": {
                "runs": {str(k): v for k, v in sorted(self.runs_files.items())},
                "epochs": {str(k): v for k, v in sorted(self.epochs_files.items())},
            },
            "entries": dict(sorted(self.entries.items())),
            "retired": self.retired,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT:
            raise ValueError(f"cache format {data.get('format')!r}, expected {FORMAT}")
        files = data["files"]
        return cls(
            shards=int(data["shards"]),
            runs_files={int(k): v for k, v in files["runs"].items()},
            epochs_files={int(k): v for k, v in files["epochs"].items()},
            entries=data["entries"],
            retired={k: float(v) for k, v in data.get("retired", {}).items()},
        )

    def skipped(self) -> dict[str, str]:
        return {rel: e[2] for rel, e in self.entries.items() if e[2] is not None}


@dataclass
class RefreshStats:
    """What a refresh did; `read` lists the folders whose files were actually opened."""

    runs: int = 0
    read: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reused: int = 0
    skipped: int = 0
    rewritten_shards: int = 0
    full: bool = False
    seconds: float = 0.0


def shard_of(rel: str, shards: int) -> int:
    return zlib.crc32(rel.encode("utf-8")) % shards


def read_folder(root: Path, rel: str, sigs: Sigs) -> tuple[dict[str, Any], pa.Table | None]:
    """The `runs` row and `epochs` table of one folder, or CorruptRun with the reason it is skipped."""
    folder = root / rel
    run_sig, epochs_sig = sigs
    if run_sig is None:
        raise CorruptRun(f"{EPOCHS_FILE} without {RUN_FILE} (half-written or not a run folder)")
    record = load_run_record(folder / RUN_FILE)
    row = coerce_row(flatten_record(record, rel), run_types(), RUN_FILE, STRICT_RUN_COLUMNS)
    epochs = None
    if epochs_sig is not None:
        try:
            data = (folder / EPOCHS_FILE).read_bytes()
        except FileNotFoundError:  # a retried run deletes its curve before starting afresh
            data = b""
        except OSError as exc:
            raise CorruptRun(f"{EPOCHS_FILE}: cannot read: {exc.strerror or exc}") from None
        parsed, _ = parse_epochs(data, running=record["status"] == "running")
        from seedbench.store.arrow import epoch_table  # pyarrow only once a folder is read

        epochs = epoch_table(parsed, row["run_id"], rel) if parsed else None
    return row, epochs


class CacheDamaged(Exception):
    """A cache file went missing or bad behind the manifest's back: rebuild from the folders."""


@dataclass
class ShardJob:
    root: Path
    directory: Path
    shard: int
    old_runs: str | None
    old_epochs: str | None
    drop: list[str]  # folders whose old rows go (changed or removed)
    read: dict[str, Sigs]  # folders to (re)read


@dataclass
class ShardResult:
    shard: int
    runs_file: str | None
    epochs_file: str | None
    entries: dict[str, Entry]


def _without(table: pa.Table | None, drop: list[str]) -> pa.Table | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if table is None or not drop:
        return table
    return table.filter(pc.invert(pc.is_in(table.column("path"), value_set=pa.array(drop, pa.string()))))


def _write(directory: Path, kind: str, shard: int, table: pa.Table) -> str | None:
    """Write a shard under a fresh name (tmp + rename), so no reader ever sees a partial file."""
    import pyarrow.parquet as pq

    if table.num_rows == 0:
        return None
    name = f"{kind}-{shard:03d}-{secrets.token_hex(6)}.parquet"
    tmp = directory / (name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, directory / name)
    return name


@dataclass
class ShardTables:
    """A shard rebuilt in memory: its rows, before they are written."""

    shard: int
    runs: pa.Table
    epochs: pa.Table
    entries: dict[str, Entry]


def build_shard(job: ShardJob) -> ShardResult:
    """Old rows minus the changed folders, plus the changed folders read afresh, as new files."""
    return write_shard(job.directory, compute_shard(job))


def write_shard(directory: Path, tables: ShardTables) -> ShardResult:
    return ShardResult(
        tables.shard, _write(directory, "runs", tables.shard, tables.runs), _write(directory, "epochs", tables.shard, tables.epochs), tables.entries
    )


def compute_shard(job: ShardJob) -> ShardTables:
    """The rows of one shard after the refresh (old rows minus the changed folders, plus those read afresh)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seedbench.store.arrow import concat, rows_to_table

    entries: dict[str, Entry] = {}
    run_rows: list[dict[str, Any]] = []
    epoch_tables: list[pa.Table] = []
    for rel, sigs in sorted(job.read.items()):
        try:
            row, epochs = read_folder(job.root, rel, sigs)
        except CorruptRun as exc:
            entries[rel] = [*sigs, str(exc)]
            continue
        entries[rel] = [*sigs, None]
        run_rows.append(row)
        if epochs is not None:
            epoch_tables.append(epochs)
    try:
        old_runs = pq.read_table(job.directory / job.old_runs) if job.old_runs and job.directory else None
        old_epochs = pq.read_table(job.directory / job.old_epochs) if job.old_epochs and job.directory else None
    except (OSError, pa.ArrowException) as exc:
        raise CacheDamaged(f"cannot read the cached shard {job.shard}: {exc}") from None
    runs = concat([t for t in (_without(old_runs, job.drop), rows_to_table(run_rows, run_types(), STRICT_RUN_COLUMNS)) if t is not None])
    epochs = concat([t for t in (_without(old_epochs, job.drop), *epoch_tables) if t is not None])
    if runs.num_rows:
        runs = runs.sort_by([("path", "ascending")])
    if epochs.num_rows:
        epochs = epochs.sort_by([("path", "ascending"), ("epoch", "ascending")])
    return ShardTables(job.shard, runs, epochs, entries)


def load_manifest(directory: Path | None) -> Manifest | None:
    """The cache's manifest, or None when there is none or it cannot be trusted (then: rebuild)."""
    if directory is None:
        return None
    try:
        return Manifest.from_json(json.loads((directory / MANIFEST).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_manifest(directory: Path, manifest: Manifest) -> None:
    tmp = directory / f"{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest.to_json(), separators=(",", ":")))
    os.replace(tmp, directory / MANIFEST)


def _collect_garbage(directory: Path, manifest: Manifest, now: float) -> None:
    """Delete replaced files after the grace period, and leftovers of interrupted refreshes."""
    live = set(manifest.runs_files.values()) | set(manifest.epochs_files.values())
    for name, since in list(manifest.retired.items()):
        if now - since > GRACE_SECONDS or name in live:
            manifest.retired.pop(name)
            if name not in live:
                (directory / name).unlink(missing_ok=True)
    for path in directory.iterdir():
        name = path.name
        if name in live or name in manifest.retired or not (name.endswith(".parquet") or name.endswith(".tmp")):
            continue
        try:
            if now - path.stat().st_mtime > GRACE_SECONDS:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def plan(manifest: Manifest, folders: dict[str, Sigs], root: Path, directory: Path) -> tuple[dict[int, ShardJob], list[str]]:
    """Which folders to read and which old rows to drop, per shard; and which folders vanished."""
    jobs: dict[int, ShardJob] = {}

    def job(rel: str) -> ShardJob:
        shard = shard_of(rel, manifest.shards)
        if shard not in jobs:
            jobs[shard] = ShardJob(root, directory, shard, manifest.runs_files.get(shard), manifest.epochs_files.get(shard), [], {})
        return jobs[shard]

    removed = [rel for rel in manifest.entries if rel not in folders]
    for rel in removed:
        job(rel).drop.append(rel)
    for rel, sigs in folders.items():
        old = manifest.entries.get(rel)
        if old is not None and old[:2] == sigs:
            continue
        target = job(rel)
        target.read[rel] = sigs
        if old is not None:
            target.drop.append(rel)
    return jobs, removed


UNWRITABLE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def unwritable(exc: BaseException) -> bool:
    """Whether a write failed for want of space or permission (not a bug, not a damaged cache)."""
    return isinstance(exc, OSError) and (exc.errno in UNWRITABLE_ERRNOS or "No space left on device" in str(exc))


def _reason(exc: OSError) -> str:
    if exc.errno:
        return os.strerror(exc.errno)
    return "No space left on device" if "No space left on device" in str(exc) else str(exc) or type(exc).__name__


def refresh(root: Path, directory: Path | None, rebuild: bool = False) -> tuple[Manifest, RefreshStats, dict[str, str]]:
    """Bring the cache in line with the run folders; returns it, what was done, unlistable folders.

    Runs under the cache's file lock: a second process waits, then finds nothing left to do. When
    the cache cannot be written (`directory` None, a full disk, a read-only folder), the returned
    manifest holds the rows in memory instead (`Manifest.memory`) and nothing is written.
    """
    from filelock import FileLock, Timeout

    started = time.perf_counter()
    if directory is None:
        return _refresh_locked(root, None, True, started, write=False, reason="no cache folder can be written")
    try:
        with FileLock(str(directory / ".lock"), timeout=LOCK_TIMEOUT_SECONDS):
            try:
                return _refresh_locked(root, directory, rebuild, started)
            except CacheDamaged:
                return _refresh_locked(root, directory, True, started)
    except Timeout:
        raise StoreError(
            f"the cache {directory} stayed locked for {LOCK_TIMEOUT_SECONDS:.0f} s by another process; "
            "wait for it to finish or delete the folder (it is rebuilt from the run folders)"
        ) from None
    except OSError as exc:  # the lock file itself cannot be created (read-only folder, full disk)
        if not unwritable(exc):
            raise
        try:
            return _refresh_locked(root, directory, rebuild, started, write=False, reason=_reason(exc))
        except CacheDamaged:
            return _refresh_locked(root, directory, True, started, write=False, reason=_reason(exc))


def _refresh_locked(
    root: Path, directory: Path | None, rebuild: bool, started: float, write: bool = True, reason: str | None = None
) -> tuple[Manifest, RefreshStats, dict[str, str]]:
    old = None if rebuild or directory is None else load_manifest(directory)
    manifest = old or Manifest()
    if old is None and directory is not None and write:  # files of an untrusted cache are garbage now
        manifest.retired = {p.name: time.time() for p in directory.glob("*.parquet")}
    found = scan(root, known=manifest.entries)
    jobs, removed = plan(manifest, found.folders, root, directory)
    n_read = sum(len(j.read) for j in jobs.values())
    stats = RefreshStats(read=sorted(r for j in jobs.values() for r in j.read), removed=sorted(removed), full=old is None)
    computed = [compute_shard(job) for _, job in sorted(jobs.items())]
    results: list[ShardResult] = []
    if write and directory is not None:
        try:
            results = [write_shard(directory, tables) for tables in computed]
        except OSError as exc:
            if not unwritable(exc):
                raise
            for result in results:  # the shards written before the disk filled: nobody will read them
                for name in (result.runs_file, result.epochs_file):
                    if name:
                        (directory / name).unlink(missing_ok=True)
            write, reason = False, _reason(exc)
    if not write and not jobs and old is not None:  # up to date: its files answer, nothing needs writing
        stats.runs, stats.reused = len(manifest.entries) - len(manifest.skipped()), len(found.folders)
        stats.skipped, stats.seconds = len(manifest.skipped()), time.perf_counter() - started
        return manifest, stats, found.unreadable
    if not write:
        return _in_memory(manifest, computed, removed, directory, reason, stats, found, n_read, started)
    if jobs:
        now = time.time()
        for result in results:
            for files, new in ((manifest.runs_files, result.runs_file), (manifest.epochs_files, result.epochs_file)):
                if result.shard in files:
                    manifest.retired[files.pop(result.shard)] = now
                if new:
                    files[result.shard] = new
            manifest.entries.update(result.entries)
        for rel in removed:
            manifest.entries.pop(rel, None)
    now = time.time()
    if jobs or old is None or any(now - t > GRACE_SECONDS for t in manifest.retired.values()):
        _collect_garbage(directory, manifest, now)
        try:
            _save_manifest(directory, manifest)
        except OSError as exc:  # the shards are written, the manifest is not: answer from memory this time
            if not unwritable(exc):
                raise
            for result in results:
                for name in (result.runs_file, result.epochs_file):
                    if name:
                        (directory / name).unlink(missing_ok=True)
            (directory / f"{MANIFEST}.{os.getpid()}.tmp").unlink(missing_ok=True)
            return _refresh_locked(root, directory, rebuild, started, write=False, reason=_reason(exc))
    stats.rewritten_shards = len(jobs)
    stats.skipped = len(manifest.skipped())
    stats.runs = len(manifest.entries) - stats.skipped
    stats.reused = len(found.folders) - n_read
    stats.seconds = time.perf_counter() - started
    return manifest, stats, found.unreadable


def _in_memory(
    manifest: Manifest,
    computed: list[ShardTables],
    removed: list[str],
    directory: Path | None,
    reason: str | None,
    stats: RefreshStats,
    found: Any,
    n_read: int,
    started: float,
) -> tuple[Manifest, RefreshStats, dict[str, str]]:
    """The refresh's result without writing: rebuilt shards from memory, unchanged ones read from their files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seedbench.store.arrow import concat

    rebuilt = {tables.shard for tables in computed}
    runs, epochs = [t.runs for t in computed], [t.epochs for t in computed]
    for kind, files, out in (("runs", manifest.runs_files, runs), ("epochs", manifest.epochs_files, epochs)):
        for shard, name in files.items():
            if shard in rebuilt:
                continue
            try:
                out.append(pq.read_table(directory / name))  # type: ignore[operator] - files exist only with a folder
            except (OSError, pa.ArrowException, TypeError) as exc:
                raise CacheDamaged(f"cannot read the cached {kind} shard {shard}: {exc}") from None
    for tables in computed:
        manifest.entries.update(tables.entries)
    for rel in removed:
        manifest.entries.pop(rel, None)
    memory = {"runs": concat([t for t in runs if t.num_rows]), "epochs": concat([t for t in epochs if t.num_rows])}
    if memory["runs"].num_rows:
        memory["runs"] = memory["runs"].sort_by([("path", "ascending")])
    if memory["epochs"].num_rows:
        memory["epochs"] = memory["epochs"].sort_by([("path", "ascending"), ("epoch", "ascending")])
    manifest.memory, manifest.memory_reason = memory, reason or "the cache cannot be written"
    stats.rewritten_shards = 0
    stats.skipped = len(manifest.skipped())
    stats.runs = len(manifest.entries) - stats.skipped
    stats.reused = len(found.folders) - n_read
    stats.seconds = time.perf_counter() - started
    return manifest, stats, found.unreadable
