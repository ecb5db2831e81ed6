"""`--detach` of a large grid: hand the preparation and submission to a background process.

Submitting to Slurm takes seconds for any grid (arrays of MaxArraySize tasks, several cells per task),
but before a cell can be submitted the driver materialises it in machinable's store and index, about
10 ms a cell on an idle machine (40 ms on a loaded login node): 10,000 cells are minutes of a command
that was meant to return at once. Moving that work into the array tasks would need the index written
from many nodes at once, which SQLite on a shared filesystem does not promise. So the driver stays
the only writer, and a detached sweep of more than BACKGROUND_OVER pending cells returns as soon as
everything the user typed is checked and the grid is planned: a background copy of the same command
(a new session, so logging out does not end it) prepares the cells and submits them array by array.
Jobs start after the first few cells, while the rest are prepared.

The copy is the same `seedbench sweep` with SUBMITTER_ENV naming its state file, so it never hands
off again. `seedbench status` shows it while it runs and says so if it ended early; since every
submission is recorded, running the same command again collects what ran and submits what is missing,
whether the copy finished or was killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from seedbench.errors import ConfigError
from seedbench.record import write_json_atomic
from seedbench.sweep.runners.slurm_queue import SLURM_DIR

BACKGROUND_OVER = 256  # pending cells a detached sweep prepares itself; more go to a background submitter
OVER_ENV = "SEEDBENCH_SLURM_BACKGROUND_OVER"
SUBMITTER_ENV = "SEEDBENCH_SLURM_SUBMITTER"  # set in the background copy: the path of its state file
STATE_FILE = "submitter.json"


def threshold() -> int:
    """BACKGROUND_OVER, or OVER_ENV's value; a malformed one is the user's typo, refused in one line."""
    text = os.environ.get(OVER_ENV)
    if text is None:
        return BACKGROUND_OVER
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{OVER_ENV}={text!r} is not a number of cells; set it to a whole number >= 0, or unset it for {BACKGROUND_OVER}")
    return value


def hand_off(pending: int) -> bool:
    """Whether a detached sweep with `pending` cells to prepare returns and leaves them to a background copy."""
    if os.environ.get(SUBMITTER_ENV):
        return False  # this is the copy
    return pending > threshold()


def state_path(store: Path, sweep: str) -> Path:
    return Path(store) / SLURM_DIR / sweep / STATE_FILE


def start_submitter(store: Path, sweep: str, argv: list[str], pending: int) -> dict[str, Any]:
    """Start the background copy of `seedbench <argv>`; returns its state (pid, host, log, cells)."""
    folder = Path(store) / SLURM_DIR / sweep
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"submitter-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path = folder / STATE_FILE
    env = {**os.environ, SUBMITTER_ENV: str(path)}
    # written before the copy starts, so that its own end (finish_submitter) is never overwritten by this
    state = {"pid": None, "host": socket.gethostname(), "log": str(log), "cells": pending, "started_at": time.time(), "ended_at": None}
    write_json_atomic(path, state)
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen(
            [sys.executable, "-m", "seedbench.cli", *argv],
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=os.getcwd(),
            start_new_session=True,  # not in the terminal's process group: Ctrl-C or a closed terminal leaves it alone
        )
    state["pid"] = process.pid
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("ended_at") is None:  # the copy needs a second to import: it has not ended
            write_json_atomic(path, state)
    return state


def finish_submitter(summary: Any) -> None:
    """In the background copy, at its end: record what it submitted, for `seedbench status`."""
    path = os.environ.get(SUBMITTER_ENV)
    if not path:
        return
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        state = {}
    slurm = summary.slurm or {}
    state.update(ended_at=time.time(), submitted=slurm.get("submitted", 0), failed=len(summary.failed))
    try:
        write_json_atomic(Path(path), state)
    except OSError:
        pass  # status then reports it as ended early; running the command again submits whatever is missing


def submitter_state(store: Path, sweep: str) -> dict[str, Any] | None:
    """The sweep's background submitter: its state file, plus whether it is still running (None: never had one)."""
    try:
        state = json.loads(state_path(store, sweep).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or "pid" not in state:
        return None
    alive = False
    if state.get("ended_at") is None and state.get("pid") is None:
        alive = True  # being started this instant
    elif state.get("ended_at") is None and state.get("host") == socket.gethostname():
        try:
            os.kill(int(state["pid"]), 0)
            alive = _cmdline_mentions(int(state["pid"]), "seedbench.cli")
        except (OSError, ValueError):
            alive = False
    elif state.get("ended_at") is None:
        alive = None  # started on another host: cannot tell from here
    state["running"] = alive
    return state


def _cmdline_mentions(pid: int, text: str) -> bool:
    """A pid can be reused: the process must still be a seedbench command."""
    try:
        return text in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc (macOS): trust the pid


def describe(state: dict[str, Any]) -> str:
    """One line for `seedbench status`."""
    started = time.strftime("%H:%M", time.localtime(state.get("started_at") or 0))
    if state.get("ended_at") is not None:
        return (
            f"background submitter (pid {state['pid']}, started {started}) ended: submitted {state.get('submitted', 0)} of {state.get('cells')} cells"
        )
    if state.get("running") is None:
        return f"background submitter started {started} on {state.get('host')} (pid {state['pid']}): ask there, or see {state.get('log')}"
    if state.get("running"):
        return f"submitting {state.get('cells')} cells in the background (pid {state['pid']}, started {started}); log: {state.get('log')}"
    return (
        f"the background submitter (pid {state['pid']}, started {started}) ended before it finished (see {state.get('log')}): "
        "run the same sweep command again to submit what is missing"
    )
