"""Read every run record of a store into one flat table (one row per run).

The run folders are the source of truth; this scan is what `seedbench report` aggregates. Corrupt or
half-written records are skipped and counted, never fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from seedbench.trial import RUN_FILE


@dataclass
class RunTable:
    runs: pd.DataFrame
    skipped: list[Path]


def flatten_record(record: dict) -> dict:
    row = {k: v for k, v in record.items() if k not in ("config", "seeds")}
    for key, value in (record.get("config") or {}).items():
        row.setdefault(key, value)
    row["lr"] = record.get("lr", row.get("lr"))
    return row


def load_runs(store: Path) -> RunTable:
    rows, skipped = [], []
    for path in sorted(Path(store).rglob(RUN_FILE)):
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or "status" not in record:
                raise ValueError("not a run record")
        except (OSError, ValueError):
            skipped.append(path)
            continue
        row = flatten_record(record)
        row["path"] = str(path.parent)
        rows.append(row)
    return RunTable(pd.DataFrame(rows), skipped)
