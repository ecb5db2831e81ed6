"""The Slurm engine's own cost, on a local single-node Slurm (cluster/slurm/up.sh) started for the run.

Cells are bench_engine.py's synthetic `spin` cells (a plugin: the cell sleeps --seconds, then trains one
tiny step), going through the real engine end to end: planned and prepared by the driver, submitted as
job arrays through submitit, run by Slurm's slurmd as separate processes that rebuild each cell from its
folders, collected from submitit's result files and squeue.

    per cell      --cells cells of --seconds each on the node's CPUs; ideal = the cells' own measured
                  times summed / CPUs. Twice: one cell per array task (every cell pays a job's start: a
                  Python process, imports, the scheduler's round), and with cells per task sized by the
                  engine from finished cells of the same group (two are trained first; the rest then
                  run as a few long tasks).
    submission    a --pending-cell grid submitted with `seedbench sweep --detach` while the partition is
                  down (so nothing runs meanwhile): when the command returns (checked and planned; a
                  background copy prepares and submits), and when the last array is submitted (machinable
                  preparing each cell, submitit's pickles and sbatch, arrays of MaxArraySize tasks).

The bench starts its own Slurm (state in a temporary folder, its own ports, MaxArraySize 1001 as on a
default cluster) and stops it at the end, so a `make slurm-up` Slurm and its jobs are left alone.

Run (from the project root; ~10 minutes on 2 cores, most of it preparing the 10,000 cells):

    .venv/bin/python bench/bench_slurm.py [--cells 100] [--seconds 1] [--pending 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_engine  # noqa: E402 - the spin plugin and its grid


def start_slurm(folder: Path) -> dict[str, str]:
    """A private Slurm for the bench: its own state folder and ports, MaxArraySize as on a default cluster."""
    env = {
        **os.environ,
        "SEEDBENCH_SLURM_DIR": str(folder),
        "SEEDBENCH_SLURM_PORT": str(17817 + 2 * (os.getuid() % 1000)),
        "SEEDBENCH_SLURM_MAX_ARRAY_SIZE": "1001",
    }
    up = subprocess.run([str(ROOT / "cluster/slurm/up.sh")], env=env, capture_output=True, text=True, timeout=120)
    if up.returncode != 0:
        raise SystemExit(f"bench_slurm: the local Slurm did not start: {up.stderr.strip()}")
    env["SLURM_CONF"] = up.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    os.environ.update({k: env[k] for k in ("SEEDBENCH_SLURM_DIR", "SLURM_CONF")})
    return env


def stop_slurm(env: dict[str, str]) -> None:
    subprocess.run([str(ROOT / "cluster/slurm/down.sh")], env=env, capture_output=True, text=True, timeout=120)


def cpus() -> int:
    from seedbench.sweep.runners.slurm_options import cluster_info

    info = cluster_info()
    return sum(p.nodes * p.cpus for p in info.partitions.values())


def bench_per_cell(store: Path, cells: int, seconds: float, workers: int, cells_per_task: int | None) -> dict:
    """`cells` cells as arrays; cells_per_task None: sized by the engine from two cells trained first."""
    from seedbench.sweep.run import run_sweep

    options = {"cells_per_task": cells_per_task} if cells_per_task else {}
    first = 0
    if cells_per_task is None:  # the engine sizes tasks from finished cells of the same group
        warm = bench_engine.spec(store, 2, seconds)
        run_sweep(warm, quiet=True, engine="slurm", slurm={"cells_per_task": 1})
        first = 2
    grid = bench_engine.spec(store, cells + first, seconds)
    # keep_stale: the two warm cells count whatever the checkout did meanwhile (a shared working tree)
    summary = run_sweep(grid, quiet=True, engine="slurm", slurm=options, keep_stale=True)
    assert summary.trained == cells and not summary.failed, (summary.trained, summary.failed[:3])
    from seedbench.sweep.runners.slurm_queue import read_arrays

    arrays = read_arrays(store, settled=True)[-len(summary.slurm["arrays"]) :]
    times = sorted(bench_engine.cell_seconds(store))[: cells + first]
    own = sum(times) * cells / len(times)  # this run's cells' own time (every spin cell sleeps alike)
    ideal = own / workers
    tasks = sum(len(r.tasks) for r in arrays)
    return {
        "cells": cells,
        "cells_per_task": round(cells / tasks, 1),
        "array_tasks": tasks,
        "arrays": len(arrays),
        "wall_s": round(summary.seconds, 1),
        "ideal_s": round(ideal, 1),
        "wall_over_ideal": round(summary.seconds / ideal, 2),
        "overhead_s_per_cell": round((summary.seconds * workers - own) / cells, 2),
        "submit_s": round(summary.slurm["submit_seconds"], 2),
    }


def bench_submission(store: Path, cells: int) -> dict:
    """`cells` zero-second cells submitted with `seedbench sweep --detach` while the partition is down.

    Through the command line, as a user submits: the command returns once the grid is checked and
    planned, and a background copy prepares and submits the cells (docs/cluster.md); both are timed.
    """
    from seedbench.sweep.runners.slurm_background import STATE_FILE
    from seedbench.sweep.runners.slurm_queue import read_arrays

    argv = [
        "sweep", "--plugin", bench_engine.PLUGIN[0], "--method", "spin", "--model", "spin_model", "--dataset", "spin_data",
        "--seeds", f"0-{cells - 1}", "--epochs", "1", "--set", "spin_seconds=0", "--set", "batch_size=16",
        "--store", str(store), "--engine", "slurm", "--detach", "--quiet",
    ]  # fmt: skip
    subprocess.run(["scontrol", "update", "partitionname=local", "state=down"], check=True, capture_output=True)
    try:
        t0 = time.time()
        command = subprocess.run([sys.executable, "-m", "seedbench.cli", *argv], capture_output=True, text=True, cwd=ROOT)
        returned = time.time() - t0
        if command.returncode != 0:
            raise SystemExit(f"bench_slurm: the detached sweep failed: {command.stderr.strip()[-2000:]}")
        (state_file,) = (store / ".seedbench/slurm").glob(f"*/{STATE_FILE}")
        while not json.loads(state_file.read_text()).get("ended_at"):
            time.sleep(1.0)
        state = json.loads(state_file.read_text())
        done = state["ended_at"] - t0
    finally:
        subprocess.run(["scancel", "--user", getpass.getuser()], capture_output=True)
        subprocess.run(["scontrol", "update", "partitionname=local", "state=up"], capture_output=True)
    assert state["submitted"] == cells, state
    arrays = read_arrays(store, settled=True)
    return {
        "cells": cells,
        "command_returned_s": round(returned, 2),
        "all_submitted_s": round(done, 1),
        "background_ms_per_cell": round((done - returned) / cells * 1000, 1),
        "arrays": len(arrays),
        "tasks": sum(len(r.tasks) for r in arrays),
        "log_tail": Path(state["log"]).read_text().strip().splitlines()[-2:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=100, help="cells of the per-cell runs (0: skip them)")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--pending", type=int, default=10000, help="cells of the submission run (0: skip it)")
    parser.add_argument("--runs", default="one,sized,submission", help="which of one (cell per task), sized, submission to run")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="seedbench-bench-slurm-") as tmp:
        base = Path(tmp)
        bench_engine.PLUGIN[:] = [str(bench_engine.make_plugin(base))]
        env = start_slurm(base / "slurm")
        try:
            workers = cpus()
            out["cpus"] = workers
            runs = set(args.runs.split(","))
            if args.cells and "one" in runs:
                out["one_cell_per_task"] = bench_per_cell(base / "one", args.cells, args.seconds, workers, 1)
                print(json.dumps({"one_cell_per_task": out["one_cell_per_task"]}), flush=True)
            if args.cells and "sized" in runs:
                out["sized_tasks"] = bench_per_cell(base / "sized", args.cells, args.seconds, workers, None)
                print(json.dumps({"sized_tasks": out["sized_tasks"]}), flush=True)
            if args.pending and "submission" in runs:
                out["submission"] = bench_submission(base / "large", args.pending)
                print(json.dumps({"submission": out["submission"]}), flush=True)
        finally:
            stop_slurm(env)
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
