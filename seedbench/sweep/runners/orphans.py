"""No process outlives a killed sweep driver: a record of the driver's private Ray, a watchdog, a reaper.

Why: a driver that starts its own local Ray (`--engine ray` without `--ray-address`) owns a Ray
session. Ray ties the processes the driver starts itself (GCS, raylet, log monitor, ...) to the
driver's life, but the raylet's two agents (the dashboard agent and the runtime-env agent) are not:
when the driver is SIGKILLed they notice the raylet is gone and then hang for minutes reporting it
to the dead GCS. Ray cannot be told not to start them, so they are ended here, two ways:

- at start, the driver records its session in the store (`<store>/.seedbench/drivers/<host>-<pid>.json`:
  the driver's pid and start time, Ray's session folder) and starts a *watchdog*, a tiny process in
  a session of its own that waits for the driver's end on a pipe. A clean shutdown removes the record
  first; if the record is still there when the pipe closes, the driver died, and the watchdog ends
  the session's processes;
- the next sweep on the store does the same for every record whose driver is dead (the watchdog may
  have been killed with the driver, or the machine rebooted).

A process belongs to the session when its command line names the session folder or it holds a file
open under it (every Ray process of a session writes its logs there; the agents rename themselves,
so their command lines do not say). Only processes of this user are considered; other users' Ray,
other sessions (a shared cluster, the test suite's) and `ray stop` are never touched.

This module is stdlib-only: the watchdog runs it as a script (`python -I -S orphans.py watch RECORD`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DRIVERS_DIR = Path(".seedbench") / "drivers"
TERM_GRACE = 3.0  # seconds a process has to end after SIGTERM before it gets SIGKILL


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), so a reused pid is not taken for the same process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == "Z":  # a zombie has ended; only its parent's wait() is missing
        return None
    return int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    return started is not None and start_time(pid) == started


def _ancestors() -> set[int]:
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def _names(path: bytes, text: bytes) -> bool:
    """Whether `text` names `path` itself or something under it (not a sibling that only shares a prefix)."""
    start = text.find(path)
    while start >= 0:
        end = start + len(path)
        if end == len(text) or text[end : end + 1] in (b"/", b"\0", b" ", b"'", b'"', b","):
            return True
        start = text.find(path, start + 1)
    return False


def session_processes(session_dir: str | os.PathLike) -> list[int]:
    """This user's live processes of one Ray session (see the module docstring), never this one or its parents."""
    target = os.fsencode(os.path.abspath(session_dir))
    uid, spared = os.getuid(), _ancestors()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != uid or start_time(pid) is None:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if _names(target, fh.read()):
                    found.append(pid)
                    continue
            links = [os.readlink(f"/proc/{pid}/cwd")]
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    links.append(os.readlink(fd.path))
        except OSError:  # it ended meanwhile, or is not ours to look at
            continue
        if any(_names(target, os.fsencode(link)) for link in links):
            found.append(pid)
    return found


def end_processes(pids: list[int], grace: float = TERM_GRACE) -> int:
    """SIGTERM, then SIGKILL what is still there after `grace` seconds; returns how many were ended."""
    started = {pid: start_time(pid) for pid in pids}
    started = {pid: t for pid, t in started.items() if t is not None}
    for pid in started:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(pid, t) for pid, t in started.items()):
        time.sleep(0.05)
    for pid, t in started.items():
        if alive(pid, t):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return len(started)


def reap_session(session_dir: str | os.PathLike, grace: float = TERM_GRACE) -> int:
    """End every process of the session; a second pass catches what was starting during the first."""
    ended = 0
    for _ in range(2):
        pids = session_processes(session_dir)
        if not pids:
            break
        ended += end_processes(pids, grace)
    return ended


# -- the record in the store ---------------------------------------------------------------------


def _host() -> str:
    return socket.gethostname()


def record_path(store: str | os.PathLike, pid: int | None = None) -> Path:
    return Path(store) / DRIVERS_DIR / f"{_host()}-{pid or os.getpid()}.json"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def record_driver(store: str | os.PathLike, session_dir: str) -> Path | None:
    """Note in the store that this process drives the Ray session in `session_dir`; None if it cannot be written."""
    path = record_path(store)
    data = {"pid": os.getpid(), "start": start_time(os.getpid()), "host": _host(), "session_dir": str(session_dir), "at": time.time()}
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:  # a full or read-only store: the sweep itself will say so; the watchdog is a courtesy
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None
    return path


def forget_driver(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def start_watchdog(path: Path) -> subprocess.Popen | None:
    """The watchdog of the record at `path`: it ends the session if the driver dies with the record still there.

    Its stdin is a pipe whose write end only this process holds (non-inheritable), so it reads EOF
    exactly when this process ends, however it ends. It runs in a session of its own (a signal to the
    driver's process group does not reach it) and in / (it never keeps the store's filesystem busy).
    """
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), "watch", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
    except OSError:
        return None


def stop_watchdog(watchdog: subprocess.Popen | None) -> None:
    """After forget_driver: close its pipe; it finds no record and exits at once."""
    if watchdog is None:
        return
    with contextlib.suppress(OSError):
        if watchdog.stdin is not None:
            watchdog.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=2)


def reap_left_behind(store: str | os.PathLike) -> list[tuple[int, int]]:
    """End what dead drivers of this host left of their Ray sessions; returns (driver pid, processes ended) per driver."""
    folder = Path(store) / DRIVERS_DIR
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob(f"{_host()}-*.json")):
        data = _read(path)
        if data is None:
            forget_driver(path)
            continue
        if alive(int(data.get("pid", 0)), data.get("start")):
            continue  # a sweep running beside this one
        ended = reap_session(data["session_dir"]) if data.get("session_dir") else 0
        forget_driver(path)
        out.append((int(data.get("pid", 0)), ended))
    return out


def _watch(path: Path) -> int:
    with contextlib.suppress(OSError):
        sys.stdin.buffer.read()  # returns at EOF: the driver has ended
    data = _read(path)
    if data is None:  # removed: the driver shut its Ray down itself
        return 0
    if data.get("session_dir"):
        reap_session(data["session_dir"])
    forget_driver(path)
    return 0


if __name__ == "__main__":  # the watchdog (see start_watchdog)
    if len(sys.argv) == 3 and sys.argv[1] == "watch":
        sys.exit(_watch(Path(sys.argv[2])))
    sys.exit(2)
