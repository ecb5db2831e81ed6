"""Code provenance per sweep: machinable manifests, and finished cells whose method's code has changed.

A cell's identity is its science (method and config), so the code that trains it is not part of it.
A finished cell whose record names another version of its method's code than today's
(seedbench/provenance.py) is **stale**: a sweep never reuses it silently. It stops before running
anything, in one line naming the methods, their stale cells and the files that changed, unless the
user says what to do: `--rerun-stale` redoes those cells (the old record is kept beside the new one
as `run.superseded-<code>.json`), `--keep-stale` keeps them as they are and remembers that choice in
the store (`code-versions.json`), so that the next sweep of the same code reuses them again. Why
this design rather than the code hash in the identity: docs/store.md, "Code versions".

The manifests live in this module because machinable re-executes the module of an Execution class
whenever it resolves it (seedbench/sweep/runners/execution.py); state kept there would be lost
between cells.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedbench.errors import ConfigError, StoreError
from seedbench.record import CACHED_MARKER, EPOCHS_FILE, RUN_FILE, read_record_dict, write_json_atomic

# code-provenance manifests captured by this driver, per manifest module
MANIFESTS: dict[str, Any] = {}

KEPT_FILE = "code-versions.json"  # in the store: code versions the user kept cells under (--keep-stale)
NO_VERSION = ""  # the code version of a record made before records carried one
CHECKPOINT_FILE = "checkpoint.pt"  # seedbench.train.checkpoint's (not imported: it imports torch)
FIX = "--rerun-stale redoes them, --keep-stale keeps them"


def begin_sweep() -> None:
    """Forget manifests captured by an earlier sweep of this process (the code may have changed)."""
    MANIFESTS.clear()


def check_policy(rerun_stale: bool = False, keep_stale: bool = False) -> str | None:
    """The flags as one policy: "rerun", "keep" or None (stop on stale cells); both at once is refused."""
    if rerun_stale and keep_stale:
        raise ConfigError("--rerun-stale and --keep-stale contradict each other; give one (rerun redoes stale cells, keep reuses them)")
    return "rerun" if rerun_stale else "keep" if keep_stale else None


# -- kept versions -----------------------------------------------------------------------------------


def read_kept(store: Path | None) -> list[dict[str, Any]]:
    """The store's kept code versions: [{method, framework, from, to, at, files}], [] if none or unreadable."""
    if store is None:
        return []
    try:
        data = json.loads((Path(store) / KEPT_FILE).read_text())
    except (OSError, ValueError):
        return []
    kept = data.get("kept") if isinstance(data, dict) else None
    return [k for k in kept if isinstance(k, dict)] if isinstance(kept, list) else []


def kept_versions(kept: list[dict[str, Any]], key: str, current: str) -> set[str]:
    """The code versions whose cells count as made by `current` for method/framework `key`: kept into it, transitively."""
    edges: dict[str, set[str]] = {}
    for k in kept:
        if f"{k.get('method')}/{k.get('framework')}" == key and isinstance(k.get("to"), str):
            edges.setdefault(k["to"], set()).add(str(k.get("from") or NO_VERSION))
    found, todo = {current}, [current]
    while todo:
        for older in edges.get(todo.pop(), ()):
            if older not in found:
                found.add(older)
                todo.append(older)
    return found


def write_kept(store: Path, entries: Iterable[dict[str, Any]]) -> None:
    """Add kept versions to the store's file (atomically; the sweep holds the index lock)."""
    kept = read_kept(store)
    known = {(k.get("method"), k.get("framework"), k.get("from"), k.get("to")) for k in kept}
    for entry in entries:
        if (entry["method"], entry["framework"], entry["from"], entry["to"]) not in known:
            kept.append(entry)
    write_json_atomic(Path(store) / KEPT_FILE, {"kept": kept})


# -- judging cells -----------------------------------------------------------------------------------


def stale_reason(then: dict[str, str], now: dict[str, str]) -> str:
    """Why cells are stale, in words: the files whose source changed (or that no record named)."""
    from seedbench.provenance import changed_files

    if not then:
        return "recorded before records carried a code version"
    changed = changed_files(then, now)
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return f"changed since they finished: {shown}" if changed else "another code version"


class StaleCheck:
    """Judges the planner's finished cells against their method's code as it is now.

    Today's version is computed once per (method, framework) per sweep (seedbench.provenance caches
    the files it has read), so 10,000 cells cost 10,000 string comparisons; a reason is worked out
    once per (method, framework, old version).
    """

    def __init__(self, store: Path | None):
        self.store = store
        self.kept = read_kept(store)
        self.versions: dict[str, Any] = {}
        self.accepted: dict[str, set[str]] = {}
        self.reasons: dict[tuple[str, str], str] = {}

    def current(self, method: Any, framework: str) -> Any:
        from seedbench.provenance import code_version

        key = f"{method.name}/{framework}"
        if key not in self.versions:
            self.versions[key] = code_version(method, framework)
            self.accepted[key] = kept_versions(self.kept, key, self.versions[key].sha256)
        return self.versions[key]

    def judge(self, planned: Any) -> Any:
        """A finished cell made by other code becomes "stale", with its reason; anything else is returned as it is."""
        if planned.state != "finished":
            return planned
        method, framework = planned.resolved.method, planned.resolved.config.framework
        now = self.current(method, framework)
        key = f"{method.name}/{framework}"
        code = planned.code or NO_VERSION
        if code in self.accepted[key]:
            return planned
        if (key, code) not in self.reasons:
            from seedbench.provenance import files_from_record

            then = files_from_record(read_record_dict(planned.path).get("code_files")) if planned.path is not None and code else {}
            self.reasons[(key, code)] = stale_reason(then, now.files)
        planned.state, planned.stale = "stale", self.reasons[(key, code)]
        return planned


@dataclass
class StaleGroup:
    """The stale cells of one method: how many, and why."""

    method: str
    cells: int = 0
    reasons: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.method} ({self.cells} cell{'s' if self.cells != 1 else ''}: {'; '.join(self.reasons)})"


def stale_groups(planned: Iterable[Any]) -> list[StaleGroup]:
    """Stale cells per method, in the order met."""
    groups: dict[str, StaleGroup] = {}
    for p in planned:
        if p.state != "stale":
            continue
        group = groups.setdefault(p.resolved.method.name, StaleGroup(p.resolved.method.name))
        group.cells += 1
        if p.stale and p.stale not in group.reasons:
            group.reasons.append(p.stale)
    return list(groups.values())


class StaleCode(StoreError):
    """Finished cells whose method's code changed since; the sweep stops before anything runs."""

    def __init__(self, groups: list[StaleGroup]):
        total = sum(g.cells for g in groups)
        super().__init__(
            f"{total} finished cell{'s' if total != 1 else ''} were made by other code than today's: {', '.join(g.describe() for g in groups)}; {FIX}"
        )


def settle_stale(planned: list[Any], policy: str | None, store: Path) -> list[StaleGroup]:
    """The driver, under the index lock, before the sweep's list is written: act on stale cells per `policy`.

    None: raise StaleCode (nothing has run or been written). "keep": they count as finished and the
    versions are remembered in the store. "rerun": each cell's record moves aside and the cell is
    pending again, redone in its own folder. Returns the stale groups acted on.
    """
    groups = stale_groups(planned)
    if not groups:
        return groups
    if policy is None:
        raise StaleCode(groups)
    kept: dict[tuple, dict[str, Any]] = {}
    for p in planned:
        if p.state != "stale":
            continue
        if policy == "keep":
            method, framework = p.resolved.method.name, p.resolved.config.framework
            key = (method, framework, p.code or NO_VERSION)
            if key not in kept:
                from seedbench.provenance import code_version

                kept[key] = {
                    "method": method,
                    "framework": framework,
                    "from": p.code or NO_VERSION,
                    "to": code_version(p.resolved.method, framework).sha256,
                    "at": time.time(),
                    "reason": p.stale,
                }
            p.state = "finished"
        else:
            supersede(p.path, p.code)
            p.state = "pending"
    if kept:
        write_kept(store, kept.values())
    return groups


def supersede(directory: Path | None, code: str | None) -> None:
    """Move a stale cell's record and curve aside (kept in its folder, not read by the store) and unmark it finished."""
    if directory is None:
        return
    tag = (code or "unversioned")[:12]
    for name in (RUN_FILE, EPOCHS_FILE, CHECKPOINT_FILE):  # a kept checkpoint would resume the old code's weights
        source = Path(directory) / name
        if source.exists():
            stem, dot, suffix = name.partition(".")
            os.replace(source, Path(directory) / f"{stem}.superseded-{tag}{dot}{suffix}")
    (Path(directory) / CACHED_MARKER).unlink(missing_ok=True)
