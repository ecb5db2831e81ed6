"""Engine pieces that need no Ray: resource requests, feasibility, locks, sweep records and status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedbench.errors import ConfigError
from seedbench.sweep.grid import SweepSpec
from seedbench.sweep.runners.locking import cell_is_locked, try_cell_lock
from seedbench.sweep.runners.resources import Request, check_feasible, parse_resources, request_for
from seedbench.sweep.status import cell_state, sweep_id, sweep_status, write_sweep


def test_parse_resources_accepts_ray_and_custom_names():
    assert parse_resources('{"num_gpus": 0.25}') == {"num_gpus": 0.25}
    assert parse_resources('{"IPU": 1, "num_cpus": 2}') == {"IPU": 1.0, "num_cpus": 2.0}
    assert parse_resources('{"GPU": 1, "resources": {"TPU": 4}}') == {"num_gpus": 1.0, "TPU": 4.0}
    assert parse_resources(None) == {} and parse_resources("") == {}
    for bad, fragment in (("{nope", "not JSON"), ("[1]", "JSON object"), ('{"IPU": -1}', "number >= 0"), ('{"IPU": "x"}', "number >= 0")):
        with pytest.raises(ConfigError, match=fragment):
            parse_resources(bad)


def test_request_from_config_then_override():
    config = {"num_cpus": 1, "num_gpus": 0, "resources": {"IPU": 1}}
    assert request_for(config) == Request(1.0, 0.0, (("IPU", 1.0),))
    req = request_for(config, {"num_gpus": 0.25, "num_cpus": 2.5, "IPU": 0})
    assert req == Request(2.5, 0.25, ())
    assert req.threads == 2 and Request(0.5).threads == 1
    assert req.ray_options() == {"num_cpus": 2.5, "num_gpus": 0.25}
    with pytest.raises(ConfigError, match="fraction of a GPU"):
        request_for(config, {"num_gpus": 1.5})


def test_unsatisfiable_request_is_refused_in_one_line():
    nodes = [
        {"Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 2.0, "memory": 1e9, "node:10.0.0.1": 1.0}},
        {"Alive": False, "NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 8.0, "IPU": 1.0}},
    ]
    check_feasible({Request(2.0): ["a"]}, nodes)
    with pytest.raises(ConfigError) as info:
        check_feasible({Request(1.0, 0.0, (("IPU", 1.0),)): ["sgd fc-digits seed=0", "sgd fc-digits seed=1"]}, nodes)
    message = str(info.value)
    assert "\n" not in message and '"IPU": 1' in message and "and 1 more" in message and "10.0.0.1 (CPU 2)" in message
    with pytest.raises(ConfigError, match="num_gpus"):
        check_feasible({Request(1.0, 0.5): ["g"]}, nodes)


def test_cell_lock_is_exclusive_and_probed(tmp_path):
    assert not cell_is_locked(tmp_path, "abc")
    held = try_cell_lock(tmp_path, "abc")
    assert held is not None
    assert cell_is_locked(tmp_path, "abc")  # flock: a second open file description is refused
    assert try_cell_lock(tmp_path, "abc") is None
    held.release()
    assert not cell_is_locked(tmp_path, "abc")


def test_sweep_record_and_status_counts(tmp_path):
    spec = SweepSpec(methods=["sgd"], models=["fc"], datasets=["digits"], seeds=[0, 1, 2, 3, 4])
    cells = spec.cells()
    assert sweep_id(cells) == sweep_id(list(reversed(cells)))
    folders = {}
    for cell, status in zip(cells, ["finished", "diverged", "failed", "running", None], strict=True):
        folder = tmp_path / f"cell{cell.seed}"
        folder.mkdir()
        if status:
            (folder / "run.json").write_text(json.dumps({"status": status}))
        if status in ("finished", "diverged"):
            (folder / "cached").write_text("")  # machinable's marker, written once the trial returned
        folders[cell.label] = folder
    write_sweep(tmp_path, cells, folders, "ray")
    write_sweep(tmp_path, cells, {}, "ray")  # a rerun keeps the folders it knew
    [status] = sweep_status(tmp_path)
    # the "running" cell has no live lock or heartbeat: it was interrupted, so it is pending again
    assert status.counts == {"finished": 1, "running": 0, "failed": 1, "diverged": 1, "pending": 2}
    assert status.summary == "sgd x fc x digits x 5 seeds"
    assert cell_state(tmp_path, None) == "pending"
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped" / "run.json").write_text(json.dumps({"status": "interrupted"}))  # Ctrl-C, or Ray ending it
    assert cell_state(tmp_path, "stopped") == "pending"
    (tmp_path / "cut").mkdir()  # run.json says finished, but the process died before machinable marked it
    (tmp_path / "cut" / "run.json").write_text(json.dumps({"status": "finished"}))
    assert cell_state(tmp_path, "cut") == "pending"
    beat = tmp_path / "cell3" / "exec" / "2026" / "heartbeat_at"
    beat.parent.mkdir(parents=True)
    beat.write_text("now")
    assert cell_state(tmp_path, "cell3") == "running"  # machinable's heartbeat is fresh
    (tmp_path / "cell3" / "id.json").write_text(json.dumps({"uuid": "u3"}))
    held = try_cell_lock(tmp_path, "u3")
    assert cell_state(tmp_path, "cell3") == "running"  # a process holds the cell's lock
    held.release()
    assert cell_state(tmp_path, "cell3") == "pending"  # lock free: interrupted, whatever the heartbeat says
    assert Path(status.path).parent.name == "sweeps"


def test_the_driver_plans_every_method_without_importing_torch(tmp_path):
    """torch takes ~2 s to import on 2 cores: a driver that imported it to plan would delay every sweep.

    Planning includes resolving every name (methods, models, initializers) and checking the dataset.
    """
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = f"""
import sys
from seedbench.registry import method_names
from seedbench.sweep.plan import plan_cells, resolve_grid
from seedbench.sweep.runners.store_context import open_store
from seedbench.sweep.grid import SweepSpec
with open_store({str(tmp_path / "store")!r}):
    cells = SweepSpec(methods=method_names(), models=["fc", "resnet18"], datasets=["digits"], seeds=[0]).cells()
    resolved = resolve_grid(cells)  # every name checked and the dataset opened: numpy only
    states = {{p.state for p in plan_cells(resolved, None)}}
print(len(cells) == 2 * len(method_names()) > 2, sorted(states), "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "['pending']", "False"]


def test_a_background_submitter_is_told_apart_running_finished_or_ended_early(tmp_path, monkeypatch):
    """`seedbench status` reads the submitter's state file: a live pid, an ended_at, or a pid that is gone."""
    import socket
    import subprocess
    import sys

    from seedbench.record import write_json_atomic
    from seedbench.sweep.runners import slurm_background as bg

    path = bg.state_path(tmp_path, "abc")
    path.parent.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    base = {"host": socket.gethostname(), "log": str(tmp_path / "x.log"), "cells": 500, "started_at": 0.0, "ended_at": None}
    write_json_atomic(path, {**base, "pid": gone.pid})
    early = bg.submitter_state(tmp_path, "abc")
    assert early["running"] is False and "ended before it finished" in bg.describe(early) and "again" in bg.describe(early)
    # a live process whose command line names seedbench.cli, as the copy's does
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "seedbench.cli"])
    try:
        write_json_atomic(path, {**base, "pid": alive.pid})
        state = bg.submitter_state(tmp_path, "abc")
        assert state["running"] is True and "submitting 500 cells in the background" in bg.describe(state)
    finally:
        alive.kill()
        alive.wait()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a reused pid: not a seedbench command
    try:
        write_json_atomic(path, {**base, "pid": other.pid})
        assert bg.submitter_state(tmp_path, "abc")["running"] is False
    finally:
        other.kill()
        other.wait()
    write_json_atomic(path, {**base, "pid": None})
    assert bg.submitter_state(tmp_path, "abc")["running"] is True  # the state file written just before the copy starts
    write_json_atomic(path, {**base, "pid": gone.pid, "ended_at": 1.0, "submitted": 500})
    assert "submitted 500 of 500" in bg.describe(bg.submitter_state(tmp_path, "abc"))
    write_json_atomic(path, {**base, "pid": 1, "host": "elsewhere"})
    assert bg.submitter_state(tmp_path, "abc")["running"] is None  # another host: not judged from here
    assert bg.submitter_state(tmp_path, "none") is None
    # the hand-off threshold, and never from inside the background copy itself
    monkeypatch.setenv(bg.OVER_ENV, "10")
    assert bg.hand_off(11) and not bg.hand_off(10)
    monkeypatch.setenv(bg.OVER_ENV, "ten")
    with pytest.raises(ConfigError, match="whole number"):
        bg.hand_off(11)
    monkeypatch.setenv(bg.OVER_ENV, "10")
    monkeypatch.setenv(bg.SUBMITTER_ENV, str(path))
    assert not bg.hand_off(10_000)
