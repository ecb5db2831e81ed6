"""Turn one run folder's files into flat rows: one for the `runs` view, one per epoch for `epochs`.

seedbench.record owns the run record (its file names, statuses, type, writer and reader); this
module owns what the store makes of it: the row a record becomes, the declared column types, and
the parsing of epochs.jsonl. Anything surprising in the files is reported as a `CorruptRun` with a
one-line reason, so a single bad folder costs one skipped run instead of a failed query.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from seedbench.record import EPOCHS_FILE, RUN_FILE, STATUSES, TOP_LEVEL_KEYS, CorruptRecord, read_record_file

# NaN/inf are not JSON: training writes str(float) ("nan", "inf", "-inf"); other tools write these.
NONFINITE = {
    "nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
}


class CorruptRun(ValueError):
    """A run folder whose files cannot be trusted; the message is the one-line reason."""


def as_float(value: Any) -> float | None:
    """Numbers, None and the non-finite strings training writes; anything else is corrupt."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value.strip().lower() in NONFINITE:
            return NONFINITE[value.strip().lower()]
        return float(value)  # "0.5" from a hand-edited record; raises ValueError otherwise
    raise ValueError(f"{value!r} is not a number")


def as_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{value} does not fit in 64 bits")
    return value


def as_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{value!r} is not a boolean")


def as_text(value: Any) -> str | None:
    """Containers become canonical JSON so they stay comparable in SQL (`resources = '{}'`)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


COERCE: dict[str, Callable[[Any], Any]] = {"DOUBLE": as_float, "BIGINT": as_int, "BOOLEAN": as_bool, "VARCHAR": as_text}


def plain(value: Any) -> Any:
    """A value for a column of inferred type: containers as JSON text, scalars as they are."""
    return as_text(value) if isinstance(value, (dict, list)) else value


def coerce_row(row: dict[str, Any], types: dict[str, str], where: str, strict: Collection[str] | None = None) -> dict[str, Any]:
    """Give known columns their declared type, so views never change type with the data.

    A value that does not fit a `strict` column (the record's own contract: status, metrics) makes
    the run corrupt; one that does not fit a config column (whose type may differ between seedbench
    versions) is kept as it is, and widens that column instead of losing the run.
    """
    out = {}
    for key, value in row.items():
        kind = types.get(key)
        if kind is None:
            out[key] = plain(value)
            continue
        try:
            out[key] = COERCE[kind](value)
        except (ValueError, OverflowError) as exc:
            if strict is not None and key not in strict:
                out[key] = plain(value)
                continue
            raise CorruptRun(f"{where}: {key}: {exc}") from None
    return out


def load_run_record(path: Path) -> dict[str, Any]:
    """Parse run.json and check the keys every reader relies on."""
    try:
        record = read_record_file(path)
    except CorruptRecord as exc:
        raise CorruptRun(str(exc)) from None
    if not isinstance(record.get("status"), str):
        raise CorruptRun(f"{RUN_FILE}: missing key 'status'")
    if record["status"] not in STATUSES:
        raise CorruptRun(f"{RUN_FILE}: unknown status {record['status']!r} (expected one of {', '.join(STATUSES)})")
    if not isinstance(record.get("config"), dict):
        raise CorruptRun(f"{RUN_FILE}: missing key 'config' (the run's configuration)")
    return record


def flatten_record(record: dict[str, Any], rel: str) -> dict[str, Any]:
    """One `runs` row: config keys as columns, top-level facts winning over requested config values.

    A config key that is also a top-level key (lr, device, method) keeps its requested value as
    config_<key>; the top-level value is what the run actually used (the resolved lr, the device).
    Top-level objects (seeds) become <key>_<subkey> columns.
    """
    config = record["config"]
    shadowed = set(TOP_LEVEL_KEYS) | set(record)
    row: dict[str, Any] = {}
    for key, value in config.items():
        row[f"config_{key}" if key in shadowed else key] = value
    for key, value in record.items():
        if key == "config":
            continue
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                row[f"{key}_{sub}"] = sub_value
        else:
            row[key] = value
    if not row.get("run_id"):
        row["run_id"] = rel  # a run made by hand with run_trial(..., run_id=None)
    row["path"] = rel
    return row


def _check_epoch(row: Any) -> None:
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if "epoch" not in row:
        raise ValueError("missing key 'epoch'")


def _locate_bad_line(lines: list[str]) -> CorruptRun:
    """The one-line reason for the first bad line (only looked for once bulk parsing failed)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            _check_epoch(json.loads(line))
        except ValueError as exc:
            return CorruptRun(f"{EPOCHS_FILE}: bad line {number}: {exc}")
    return CorruptRun(f"{EPOCHS_FILE}: unreadable")


def parse_epochs(data: bytes, running: bool) -> tuple[list[dict[str, Any]], bool]:
    """Epoch rows of epochs.jsonl, and whether a half-written last line was dropped.

    A running run may be caught mid-append: its unterminated last line is dropped (it is read again,
    complete, on the next refresh). Anywhere else a bad line means the curve cannot be trusted.
    The complete lines are parsed as one JSON array: one C call instead of one per epoch.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptRun(f"{EPOCHS_FILE}: not UTF-8 text") from None
    cut = text.rfind("\n") + 1
    lines = text[:cut].split("\n")[:-1]
    tail = text[cut:]
    try:
        rows = json.loads("[" + ",".join(line for line in lines if line and not line.isspace()) + "]")
        if not all(type(row) is dict and "epoch" in row for row in rows):
            raise ValueError("not an epoch record")
    except ValueError:
        raise _locate_bad_line(lines) from None
    partial = False
    if tail.strip():
        try:
            row = json.loads(tail)
            _check_epoch(row)
            rows.append(row)  # a complete last line without its newline (a hand-made file)
        except ValueError as exc:
            if not running:
                raise CorruptRun(f"{EPOCHS_FILE}: truncated line {len(lines) + 1}: {exc}") from None
            partial = True
    return rows, partial
