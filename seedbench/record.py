"""The run folder: its file names, the typed run record (run.json) and how to read and write it.

Training writes the record, the engines read it to learn a cell's outcome, `seedbench status` counts
it, and the store turns it into the `runs` view, whose typed columns are derived from `RunRecord`.
All of them use this module, so the record has one definition and run.json one reader
(`read_record_file`); turning records into the store's rows (flattening, column types, the
non-finite spellings other tools write) is seedbench.store.rows. Torch-free: the driver and the
store import it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

RUN_FILE = "run.json"
EPOCHS_FILE = "epochs.jsonl"
TRACEBACK_FILE = "traceback.txt"
WORKER_FILE = "worker.json"  # in the run-record folder: which process/node ran the last attempt
CACHED_MARKER = "cached"  # machinable's "finished" marker in the interface folder

Status = Literal["running", "finished", "diverged", "failed", "interrupted"]
STATUSES: tuple[str, ...] = ("running", "finished", "diverged", "failed", "interrupted")


class RunRecord(BaseModel):
    """One cell's run. Optimizer diagnostics and method summaries ride along as extra keys."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    run_id: str | None = None
    method: str | None = None
    arm: str | None = None  # what the arm did, in words (seedbench.methods.base.Method.arm_label)
    config: dict[str, Any] = {}
    lr: float | None = None
    status: Status = "running"
    reason: str | None = None
    error: str | None = None
    init_applied: str | None = None  # the initializer that really ran ("default": the framework's own)
    framework: str | None = None
    host: str | None = None
    python: str | None = None
    torch: str | None = None
    seedbench: str | None = None
    device: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    seconds: float | None = None
    train_seconds: float | None = None
    epochs_completed: int | None = None
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None
    val_acc_last10: float | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    images_per_s: float | None = None
    D: int | None = None
    seeds: dict[str, int] | None = None
    placement: dict[str, Any] | None = None  # where it ran: not identity
    plugins: list[dict[str, str]] | None = None
    prepare: dict[str, Any] | None = None  # the method's model hook summary (e.g. Sup-Walsh pretraining)
    pack_size: int | None = None  # provenance of packed training, not identity
    pack_id: str | None = None
    # the code that made it (seedbench/provenance.py; docs/store.md, "Code versions"): not identity,
    # but a finished cell whose method's code_sha256 is not today's is stale, never silently reused
    code_sha256: str | None = None  # a hash of the method's own source: code_files, hashed as one
    code_files: list[dict[str, str]] | None = None  # every file of that source: {"path", "sha256"}
    code_driver_sha256: str | None = None  # set only where the worker's code differed from the driver's
    git_commit: str | None = None  # the library checkout's commit, when run from one
    git_diff_sha256: str | None = None  # a hash of its uncommitted changes (None: clean)
    numpy: str | None = None
    tensorflow: str | None = None  # TensorFlow's version, for a cell trained with it
    device_name: str | None = None  # the GPU's or the CPU's model


# Keys of the record that the `runs` view shows at top level; a config key of the same name is
# shown as config_<key>. Containers (config, seeds, placement, ...) are not columns of their own.
_CONTAINERS = {"config", "seeds", "placement", "plugins", "prepare", "code_files"}
TOP_LEVEL_KEYS: tuple[str, ...] = tuple(k for k in RunRecord.model_fields if k not in _CONTAINERS) + ("seeds",)


class CorruptRecord(ValueError):
    """run.json is missing, truncated or not a record; the message is the one-line reason."""


def _jsonable(value: Any) -> Any:
    """NaN/inf are not JSON: stored as strings ("nan", "inf") so every tool can read the record."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Readers see the old or the new file, never half of one (tmp file + rename in the same folder)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(_jsonable(data), indent=1, default=str))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_record(directory: Path, record: RunRecord | dict[str, Any]) -> None:
    data = record.model_dump(exclude_none=False) if isinstance(record, RunRecord) else dict(record)
    write_json_atomic(Path(directory) / RUN_FILE, data)


def read_record_file(path: Path) -> dict[str, Any]:
    """run.json at `path` as a dict, or CorruptRecord with the one-line reason it cannot be read.

    The store names these reasons for every folder it skips; the engines only need to know that
    the record is unusable (read_record_dict).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CorruptRecord(f"{RUN_FILE}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CorruptRecord(f"{RUN_FILE}: not UTF-8 text") from None
    if not text.strip():
        raise CorruptRecord(f"{RUN_FILE}: empty file")
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise CorruptRecord(f"{RUN_FILE}: bad JSON: {exc}") from None
    if not isinstance(record, dict):
        raise CorruptRecord(f"{RUN_FILE}: not a JSON object")
    return record


def read_record_dict(directory: str | Path) -> dict[str, Any]:
    """The raw record as a dict; {} when it is missing or unreadable (callers that must tell use read_record)."""
    try:
        return read_record_file(Path(directory) / RUN_FILE)
    except CorruptRecord:
        return {}


def read_record(directory: str | Path) -> RunRecord:
    """The typed record; CorruptRecord (one line) when it is missing, truncated or malformed.

    pydantic reads the non-finite metrics training writes as strings ("nan", "inf", "-inf") back
    as floats.
    """
    try:
        data = read_record_file(Path(directory) / RUN_FILE)
    except CorruptRecord as exc:
        raise CorruptRecord(f"{directory}/{exc}") from None
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CorruptRecord(f"{Path(directory) / RUN_FILE}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def is_complete(directory: str | Path) -> bool:
    """A record that says the run ended (finished or diverged) and parses: safe to reuse."""
    try:
        return read_record(directory).status in ("finished", "diverged")
    except CorruptRecord:
        return False
