"""Find the run folders of a store and fingerprint their files without reading them.

A fingerprint is (mtime_ns, size, inode) of run.json and of epochs.jsonl. run.json is replaced
atomically (new inode) and epochs.jsonl only grows, so a changed file changes its fingerprint; the
cache re-reads exactly the folders whose fingerprints moved.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from seedbench.record import EPOCHS_FILE, RUN_FILE

Signature = list[int]  # [mtime_ns, size, inode]: a list, as it round-trips through the JSON manifest


@dataclass
class ScanResult:
    folders: dict[str, list[Signature | None]] = field(default_factory=dict)  # [run.json, epochs.jsonl]
    unreadable: dict[str, str] = field(default_factory=dict)  # directory -> why it could not be listed


def _signature(entry: os.DirEntry | str) -> Signature | None:
    try:
        st = entry.stat() if isinstance(entry, os.DirEntry) else os.stat(entry)
    except OSError:  # absent, or removed between listing and stat
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def scan(root: Path, known: Collection[str] = ()) -> ScanResult:
    """Every folder under `root` holding run.json or epochs.jsonl, keyed by its path relative to root.

    A run folder's own sub-folders (machinable's executions and related/) are not searched: runs
    are never nested, and skipping them makes a scan about five times faster. Folders in `known`
    (run folders of the last scan) are not even listed: two stats tell whether they changed.
    Hidden directories (the cache itself, .git) are not entered and symlinks are not followed, so
    a walk is finite and never counts a run twice.
    """
    result = ScanResult()
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        directory, rel = stack.pop()
        key = rel or "."
        if key in known:
            sigs = [_signature(f"{directory}/{RUN_FILE}"), _signature(f"{directory}/{EPOCHS_FILE}")]
            if sigs[0] is not None or sigs[1] is not None:
                result.folders[key] = sigs
                continue
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            result.unreadable[key] = f"cannot list folder: {exc.strerror or exc}"
            continue
        run_sig = epochs_sig = None
        subdirs = []
        for entry in entries:
            name = entry.name
            if name == RUN_FILE:
                run_sig = _signature(entry) if entry.is_file() else None
            elif name == EPOCHS_FILE:
                epochs_sig = _signature(entry) if entry.is_file() else None
            elif name[0] != "." and entry.is_dir(follow_symlinks=False):
                subdirs.append(entry)
        if run_sig is not None or epochs_sig is not None:
            result.folders[key] = [run_sig, epochs_sig]
            continue
        stack.extend((entry.path, f"{rel}/{entry.name}" if rel else entry.name) for entry in subdirs)
    return result
