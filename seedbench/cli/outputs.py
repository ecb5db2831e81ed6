"""Check an output path before any work starts, so a typo costs a second instead of a finished report.

A command that queries a store, computes statistics or renders a plot and only then finds that
`-o results/table.tex` cannot be written throws the work away with a traceback. `check_output` runs
first and turns every such problem into one ConfigError line naming the path, the problem and the
fix: the folder is missing or is a file, the path is a folder or a device, the extension is not one
the command writes, or the location is not writable. It never creates, truncates or modifies the
file itself.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from seedbench.errors import ConfigError


def _extensions(allowed: Iterable[str]) -> list[str]:
    """'.csv' and 'csv' both mean .csv; lower-case, sorted for the message."""
    return sorted({("." + e.lower().lstrip(".")) for e in allowed if e.strip(".")})


def _probe_directory(directory: Path) -> str | None:
    """Why a new file cannot be created in `directory`, or None. Creates and removes a hidden temp file.

    os.access alone is not enough: it answers yes for root on a read-only file system in some
    setups and knows nothing of quotas; creating a file is the only real test.
    """
    if not os.access(directory, os.W_OK | os.X_OK):
        return "permission denied"
    try:
        fd, probe = tempfile.mkstemp(prefix=".seedbench-write-check-", dir=directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(probe)
    return None


def _check_parent(path: Path, shown: str, flag: str) -> None:
    parent = path.parent
    if not parent.exists():
        raise ConfigError(f"{flag} {shown}: the folder {parent} does not exist; create it first (mkdir -p {parent}) or choose another path")
    if not parent.is_dir():
        raise ConfigError(f"{flag} {shown}: {parent} is a file, not a folder; choose a path inside a folder")
    why = _probe_directory(parent)
    if why is not None:
        raise ConfigError(f"{flag} {shown}: cannot write in {parent} ({why}); choose a writable folder")


def check_output(path: str | os.PathLike, allowed: set[str], flag: str = "-o") -> Path:
    """The absolute path of an output file the command may write, or a one-line ConfigError.

    `allowed` holds the extensions the command writes ({".csv", ".json"} or {"csv", "json"}). An
    existing file is checked by opening it for append (nothing is written, nothing truncated); a new
    one by creating and removing a temporary file beside it.
    """
    shown = os.fspath(path)
    if not shown.strip():
        raise ConfigError(f"{flag}: empty output path; give a file name such as results{(_extensions(allowed) or ['.txt'])[0]}")
    extensions = _extensions(allowed)
    target = Path(shown).expanduser()
    if shown.endswith(("/", os.sep)) or target.is_dir():
        example = target / f"results{extensions[0] if extensions else ''}"
        raise ConfigError(f"{flag} {shown}: is a folder, not a file; give a file name such as {example}")
    if target.exists() and not target.is_file():
        raise ConfigError(f"{flag} {shown}: exists and is not a regular file (a device, socket or pipe); choose a file name")
    suffix = target.suffix.lower()
    if suffix not in extensions:
        got = f"extension {suffix!r} is not supported here" if suffix else "has no extension"
        raise ConfigError(f"{flag} {shown}: {got}; use one of {', '.join(extensions)}")
    target = target.absolute()
    _check_parent(target, shown, flag)
    if target.exists():
        try:
            with open(target, "ab"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"{flag} {shown}: exists but cannot be written ({exc.strerror or exc}); check its permissions or choose another name"
            ) from None
    return target


def check_output_dir(path: str | os.PathLike, flag: str = "-o") -> Path:
    """The absolute path of an output folder (existing, or one to create in an existing folder), or a ConfigError."""
    shown = os.fspath(path)
    if not shown.strip():
        raise ConfigError(f"{flag}: empty output path; give a folder name")
    target = Path(shown).expanduser().absolute()
    if target.exists():
        if not target.is_dir():
            raise ConfigError(f"{flag} {shown}: is a file, but this writes several files into a folder; give a folder name")
        why = _probe_directory(target)
        if why is not None:
            raise ConfigError(f"{flag} {shown}: cannot write in this folder ({why}); choose a writable folder")
        return target
    _check_parent(target, shown, flag)
    return target
