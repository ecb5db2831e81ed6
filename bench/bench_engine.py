"""The Ray engine's own cost: against the ideal schedule, against Ray Tune, per cell, and in driver memory.

Every cell is a synthetic machinable component (`spin`, written into a throw-away project together
with its machinable.yaml; it is not part of seedbench's components/) that sleeps `--seconds` and writes
its run.json. Cells go through the real engine end to end: planned against the store, materialised
and prepared by the driver under the index lock, run as Ray tasks that rebuild them from their folders.

    wall / ideal      --cells cells on --workers workers (a local Ray with that many CPUs); ideal =
                      the cells' own measured times summed / workers. Wall is the whole sweep: planning,
                      materialising, preparing, dispatching, collecting (target <= 1.05).
    seedbench / Tune  the same cells as a tune.Tuner grid (a function trainable that sleeps as long),
                      measured in the same run on a fresh Ray of the same size (target <= 0.3).
    overhead / cell   worker time lost per cell: (wall x workers - sum of cell times) / cells; and the
                      driver's own cost per cell (plan + prepare + submit), and the end-to-end time per
                      cell of zero-second cells (the engine's throughput limit).
    driver memory     RSS of the driver holding --pending cells planned, materialised, prepared and
                      submitted to Ray (still queued), against its RSS before planning.

Set-up: Ray Tune's extra goes into its own venv, never into the project's .venv:

    python3.11 -m venv /tmp/tune-venv && /tmp/tune-venv/bin/pip install -r bench/requirements-tune.txt

Run (from the project root; ~10 minutes on 2 cores, most of it Tune and the 10,000-cell plan):

    .venv/bin/python bench/bench_engine.py [--tune-python /tmp/tune-venv/bin/python] [--cells 200]
        [--seconds 0.5] [--workers 2] [--pending 10000] [--json out.json]

Without a Tune venv (or with --tune-python ''), the Tune comparison is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPIN = '''\
"""Synthetic cell for bench/bench_engine.py: sleep, then write a run record."""

import json
import os
import time

from machinable import Interface
from pydantic import BaseModel, ConfigDict


class Spin(Interface):
    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = "none"
        dataset: str = "none"
        seed: int = 0
        seconds: float = 0.5
        num_cpus: float = 1
        num_gpus: float = 0
        resources: dict[str, float] = {}

    def __call__(self) -> None:
        start = time.time()
        if self.config.seconds > 0:
            time.sleep(self.config.seconds)
        end = time.time()
        record = {"status": "finished", "seconds": end - start, "started_at": start, "finished_at": end, "seed": self.config.seed}
        path = os.path.join(self.local_directory(), "run.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
'''

TUNE = '''\
import json, os, sys, time
import ray
from ray import tune

cells, seconds, workers = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
t0 = time.time()
ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")  # a fresh instance of its own
started = time.time() - t0

def trainable(config):
    start = time.time()
    time.sleep(config["seconds"])
    tune.report({"cell_seconds": time.time() - start})

storage = os.path.join(os.getcwd(), "tune-results")  # the caller's temporary folder
tuner = tune.Tuner(
    trainable,
    param_space={"i": tune.grid_search(list(range(cells))), "seconds": seconds},
    tune_config=tune.TuneConfig(),
    run_config=tune.RunConfig(storage_path=storage, name="bench", verbose=0),
)
t0 = time.time()
results = tuner.fit()
wall = time.time() - t0
cell_seconds = sum(r.metrics.get("cell_seconds", 0.0) for r in results)
errors = sum(1 for r in results if r.error)
print(json.dumps({"wall": wall, "cell_seconds": cell_seconds, "trials": len(results), "errors": errors, "ray_start": started}))
'''


def make_project(base: Path) -> Path:
    project = base / "project"
    (project / "components").mkdir(parents=True)
    (project / "components" / "__init__.py").write_text("")
    (project / "components" / "spin.py").write_text(SPIN)
    (project / "machinable.yaml").write_text("presets: {}\nlearning_rates: {}\n")
    return project


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process, MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def spec(store: Path, cells: int, seconds: float):
    from seedbench.sweep.grid import SweepSpec

    return SweepSpec(methods=["spin"], models=["none"], datasets=["none"], seeds=list(range(cells)), overrides={"seconds": seconds}, store=str(store))


def cell_seconds(store: Path) -> list[float]:
    return [json.loads(p.read_text())["seconds"] for p in store.rglob("run.json")]


def bench_sweep(store: Path, cells: int, seconds: float, workers: int) -> dict:
    from seedbench.sweep.run import run_sweep

    summary = run_sweep(spec(store, cells, seconds), quiet=True, engine="ray")
    assert summary.trained == cells and not summary.failed, (summary.trained, summary.failed)
    times = cell_seconds(store)
    ideal = sum(times) / workers
    wall = summary.seconds
    return {
        "cells": cells,
        "wall_s": wall,
        "ideal_s": ideal,
        "wall_over_ideal": wall / ideal if ideal else None,
        "overhead_ms_per_cell": (wall * workers - sum(times)) / cells * 1000,
        "driver_ms_per_cell": (summary.timings.get("validate", 0) + summary.timings.get("plan_prepare", 0)) / cells * 1000,
        "timings_s": {k: round(v, 3) for k, v in summary.timings.items()},
    }


def bench_zero(store: Path, cells: int) -> dict:
    from seedbench.sweep.run import run_sweep

    summary = run_sweep(spec(store, cells, 0.0), quiet=True, engine="ray")
    assert summary.trained == cells and not summary.failed
    return {"cells": cells, "wall_s": summary.seconds, "ms_per_cell": summary.seconds / cells * 1000, "timings_s": {k: round(v, 3) for k, v in summary.timings.items()}}


def bench_memory(store: Path, pending: int, seconds: float) -> dict:
    """Hold `pending` cells in the driver exactly as run_sweep's loop does, measure RSS, then cancel them."""
    from seedbench.sweep.runners.store_context import open_store, ray_engine
    from seedbench.sweep.runners.dispatch import begin_sweep, prepare_cell
    from seedbench.sweep.runners.locking import index_lock, index_path, keep_index_open
    from seedbench.sweep.plan import check_cells, plan_cell
    from seedbench.sweep.runners.store_context import index_database, project_root

    cells = spec(store, pending, seconds).cells()
    before = rss_mib()[0]
    t0 = time.time()
    with open_store(str(store)) as directory:
        runner = ray_engine.RayRunner(lambda cell, outcome: None)
        begin_sweep()
        root = project_root()
        database = index_path(directory, index_database(str(store)), root)
        with index_lock(database):
            check_cells(cells)
            plan_cell(cells[0])
            with keep_index_open(database):
                for cell in cells:
                    prepared = prepare_cell(plan_cell(cell), directory, root)
                    runner.submit(prepared)
                    runner.poll()
        t_all = time.time() - t0
        runner.poll()
        counts = runner.counts()
        after, peak = rss_mib()
        runner.close()
    return {"pending_cells": pending, "still_queued_when_measured": counts["queued"], "rss_before_mib": round(before, 1), "rss_with_pending_mib": round(after, 1),
            "peak_rss_mib": round(peak, 1), "kib_per_cell": round((after - before) * 1024 / pending, 1), "plan_prepare_submit_s": round(t_all, 1)}


def bench_tune(python: str, cells: int, seconds: float, workers: int) -> dict:
    if not python:
        return {"skipped": "no --tune-python given"}
    if not Path(python).exists():
        return {"skipped": f"{python} does not exist; create it with: python3.11 -m venv /tmp/tune-venv && /tmp/tune-venv/bin/pip install -r bench/requirements-tune.txt"}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "tune_bench.py"
        script.write_text(TUNE)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["RAY_AIR_NEW_OUTPUT"] = "0"
        done = subprocess.run([python, str(script), str(cells), str(seconds), str(workers)], capture_output=True, text=True, env=env, cwd=tmp, timeout=3600)
    if done.returncode != 0:
        return {"skipped": f"Tune run failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["ideal_s"] = result["cell_seconds"] / workers
    result["wall_over_ideal"] = result["wall"] / result["ideal_s"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pending", type=int, default=10000, help="cells held for the memory figure (0: skip)")
    default_tune = "/tmp/tune-venv/bin/python" if Path("/tmp/tune-venv/bin/python").exists() else ""
    parser.add_argument("--tune-python", default=default_tune, help="python of a venv with bench/requirements-tune.txt ('' skips Tune)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="seedbench-bench-"))
    project = make_project(base)
    os.environ["SEEDBENCH_CATALOG"] = str(project / "machinable.yaml")
    os.environ.pop("MACHINABLE_INDEX", None)
    out: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}, "config": vars(args)}
    try:
        from seedbench.sweep.runners import ray as ray_engine

        t0 = time.time()
        ray_engine.connect(num_cpus=args.workers)
        out["ray_start_s"] = round(time.time() - t0, 2)
        try:
            out["seedbench"] = bench_sweep(base / "store-main", args.cells, args.seconds, args.workers)
            print(json.dumps({"seedbench": out["seedbench"]}), flush=True)
            out["zero_work"] = bench_zero(base / "store-zero", args.cells)
            print(json.dumps({"zero_work": out["zero_work"]}), flush=True)
            if args.pending:
                out["memory"] = bench_memory(base / "store-memory", args.pending, 3600.0)  # cells that stay pending
                print(json.dumps({"memory": out["memory"]}), flush=True)
        finally:
            ray_engine.shutdown()
        time.sleep(2)  # let the engine's Ray go before Tune starts its own on the same cores
        out["tune"] = bench_tune(args.tune_python, args.cells, args.seconds, args.workers)
        if "wall" in out["tune"]:
            out["seedbench_over_tune"] = out["seedbench"]["wall_s"] / out["tune"]["wall"]
        out["machine"]["load_avg_at_end"] = os.getloadavg()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    s = out["seedbench"]
    print(textwrap.dedent(f"""
        engine benchmark: {args.cells} cells x {args.seconds} s on {args.workers} workers ({os.cpu_count()} cores, load {out['machine']['load_avg_at_start'][0]:.1f})
          wall / ideal          {s['wall_over_ideal']:.3f}   ({s['wall_s']:.1f} s / {s['ideal_s']:.1f} s; target <= 1.05)
          overhead per cell     {s['overhead_ms_per_cell']:.0f} ms of worker time; driver plan+prepare {s['driver_ms_per_cell']:.1f} ms
          zero-second cells     {out['zero_work']['ms_per_cell']:.1f} ms per cell end to end""").rstrip())
    if "wall" in out["tune"]:
        t = out["tune"]
        print(f"  Ray Tune              {t['wall']:.1f} s (wall / ideal {t['wall_over_ideal']:.2f}); seedbench / Tune {out['seedbench_over_tune']:.3f} (target <= 0.3)")
    else:
        print(f"  Ray Tune              skipped: {out['tune']['skipped']}")
    if "memory" in out:
        m = out["memory"]
        print(f"  driver memory         {m['rss_with_pending_mib']:.0f} MiB with {m['pending_cells']} pending cells (before planning {m['rss_before_mib']:.0f} MiB; {m['kib_per_cell']:.1f} KiB per cell; plan+prepare+submit {m['plan_prepare_submit_s']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
