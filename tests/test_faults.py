"""Faults a new user causes, caused for real: a SIGKILLed sweep driver on each engine, and a store whose disk fills.

The driver runs the real command line in a process group of its own; the test SIGKILLs it mid-sweep,
then looks at every process on the machine (its own scan of /proc, independent of the code under
test) for anything of that sweep still alive, and runs the same command again. A full disk is a
real tmpfs mounted as the store (root only; skipped in one line elsewhere), filled by a file while
a cell trains.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli
from tests.tiny_fs import fill, tmpfs

pytestmark = pytest.mark.slow

# cells that train for a few seconds each, so that a kill lands mid-sweep
GRID = ["--method", "sgd", "--model", "fc", "--dataset", "digits", "--set", "limit_train=1024", "--set", "val_size=64"]
# nothing from the caller's environment may point a sweep at another Ray, index or data
CLEAN_ENV = {"RAY_ADDRESS": "", "MACHINABLE_INDEX": "", "SEEDBENCH_DATA": "", "OMP_NUM_THREADS": "1"}


def start(*args: str) -> subprocess.Popen:
    """The CLI in a session (and process group) of its own, as a user's terminal would run it."""
    return subprocess.Popen(
        [sys.executable, "-m", "seedbench.cli", *args],
        cwd=ROOT,
        env={**os.environ, **CLEAN_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the driver alone (not its group: whatever it started must be ended by seedbench, not by us)."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def live_processes() -> dict[int, int]:
    """pid -> parent pid of every process that has not ended (zombies have: only their parent's wait is missing)."""
    out = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields and fields[0] != "Z":
            out[int(entry.name)] = int(fields[1])
    return out


def descendants(pid: int) -> set[int]:
    parents = live_processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        found |= frontier
    return found


def of_session(session_dir: str) -> list[str]:
    """Live processes whose command line names the Ray session folder or that hold a file open in it."""
    target = session_dir.rstrip("/")
    found = []
    for pid in live_processes():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            links = []
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    links.append(os.readlink(fd))
        except OSError:
            continue
        if target + "/" in cmdline or target + " " in cmdline or any(link.startswith(target + "/") for link in links):
            found.append(f"{pid} {cmdline.strip()[:80]}")
    return found


def driver_record(store: Path) -> dict | None:
    """What the driver wrote about its Ray session (seedbench.sweep.runners.orphans)."""
    for path in (store / ".seedbench" / "drivers").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            return {**json.loads(path.read_text()), "path": str(path)}
    return None


def a_cell_started(store: Path) -> bool:
    return any(store.rglob("worker.json"))


def statuses(store: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["status"] for p in store.rglob("run.json"))


# -- a killed driver -----------------------------------------------------------------------------


def test_a_killed_ray_driver_leaves_no_process_behind_and_the_next_run_finishes(tmp_path: Path) -> None:
    """The private local Ray of `--engine ray`: its watchdog ends it at once; if the watchdog is killed
    too, the next run of the sweep ends what is left before it starts its own Ray."""
    store = tmp_path / "store"
    args = ["sweep", *GRID, "--seeds", "0-3", "--epochs", "6", "--engine", "ray", "--store", str(store), "--quiet"]

    # 1. the driver alone is killed: nothing of its Ray session is alive a bounded time later
    first = start(*args)
    try:
        record = wait_for(lambda: driver_record(store) if a_cell_started(store) else None, 240, "a Ray cell to start")
        assert of_session(record["session_dir"]), "the scan must see the session's processes while the sweep runs"
        kill(first)
    finally:
        if first.poll() is None:
            first.kill()
    wait_for(lambda: not of_session(record["session_dir"]), 60, f"the Ray session of the killed driver to end: {of_session(record['session_dir'])}")

    # 2. the driver and its watchdog are killed: Ray's agents outlive them, and the next run ends them
    second = start(*args)
    try:
        session = wait_for(
            lambda: (r := driver_record(store)) and r["pid"] == second.pid and a_cell_started(store) and r, 240, "the second run's Ray"
        )
        watchdogs = [pid for pid in live_processes() if session["path"].encode() in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(watchdogs) == 1, watchdogs
        os.kill(watchdogs[0], signal.SIGKILL)
        kill(second)
    finally:
        if second.poll() is None:
            second.kill()
    time.sleep(2)  # what Ray itself ends when its driver dies is gone by now
    left = of_session(session["session_dir"])
    assert left, "Ray's agents outlive a killed driver (the reason for the reaper); nothing to reap means this test tests nothing"

    third = run_cli(*args, env=CLEAN_ENV, timeout=600)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "Traceback" not in third.stdout + third.stderr
    assert f"left behind by sweep driver {second.pid}" in third.stderr, third.stderr
    assert not of_session(session["session_dir"]), f"still alive after the next run: {of_session(session['session_dir'])}"
    assert not of_session(record["session_dir"])
    assert "4 cells: trained" in third.stdout and "failed 0" in third.stdout, third.stdout
    assert statuses(store) == ["finished"] * 4
    assert driver_record(store) is None, "a driver that ended cleanly leaves no record"


def test_a_killed_local_driver_leaves_nothing_and_its_cell_resumes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["sweep", *GRID, "--seeds", "0-1", "--epochs", "25", "--store", str(store), "--quiet"]
    proc = start(*args)
    try:
        wait_for(lambda: any(store.rglob("checkpoint.pt")), 240, "a cell to save its first checkpoint")
        children = descendants(proc.pid)
        kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    (checkpoint,) = store.rglob("checkpoint.pt")  # the cell was killed mid-training, after an epoch's checkpoint
    wait_for(lambda: not (children & set(live_processes())), 30, f"the killed driver's processes {children} to end")

    again = run_cli(*args, env=CLEAN_ENV, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed from a checkpoint 1" in again.stdout, again.stdout
    assert statuses(store) == ["finished", "finished"]
    record = json.loads((checkpoint.parent / "run.json").read_text())
    assert record["resumed_from_epoch"] >= 1 and not checkpoint.exists()


# -- a full disk -----------------------------------------------------------------------------------


def test_a_disk_that_fills_mid_sweep_stops_it_in_one_line_and_the_same_command_finishes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "80m") as disk:  # a sweep refuses to start below 64 MiB free
        store = disk / "store"
        args = ["sweep", *GRID, "--seeds", "0-2", "--epochs", "25", "--store", str(store), "--quiet"]
        proc = start(*args)
        try:
            wait_for(lambda: any(store.rglob("checkpoint.pt")) or proc.poll() is not None, 240, "a cell to save a checkpoint")
            filler = fill(disk)
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 2, out + err
        assert "Traceback" not in out + err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), err
        for fragment in (str(store), "No space left on device", "free space", "run the same command again", "interrupted"):
            assert fragment in lines[0], (fragment, lines[0])
        assert "interrupted" in statuses(store) and "failed" not in statuses(store), statuses(store)

        filler.unlink()
        again = run_cli(*args, env=CLEAN_ENV, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "3 cells: trained" in again.stdout and "failed 0" in again.stdout, again.stdout
        assert statuses(store) == ["finished"] * 3
