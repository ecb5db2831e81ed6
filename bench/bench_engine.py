"""The Ray engine's own cost: against the ideal schedule, against Ray Tune, per cell, and in driver memory.

Every cell is a synthetic method (`spin`, a plugin written into a temporary folder, with a tiny dataset
and model of its own) whose model hook sleeps `--seconds` before one tiny training step. Cells go
through the real engine end to end: resolved and validated, planned against the store, materialised
and prepared by the driver under the index lock, run as Ray tasks that rebuild them from their folders
and import the plugin from the source the driver sent.

    wall / ideal      --cells cells on the Ray engine with --workers workers (a local Ray with that many
                      CPUs) and on the local engine (one cell at a time), side by side, --repeat times
                      each, alternating; ideal = the cells' own measured times (their run.json seconds)
                      summed / workers (1 for the local engine). Wall is the whole sweep: planning,
                      materialising, preparing, dispatching, collecting (target <= 1.05 on both).
    seedbench / Tune  the same cells as a tune.Tuner grid (a function trainable that sleeps as long),
                      measured in the same run on a fresh Ray of the same size (target <= 0.3).
    overhead / cell   worker time lost per cell: (wall x workers - sum of cell times) / cells; and the
                      driver's own cost per cell (plan + prepare + submit), and the end-to-end time per
                      cell of zero-second cells (the engine's throughput limit).
    10,000 cells      a real sweep of --pending zero-second cells on the Ray engine: the time to resolve,
                      look up and list them all in the store before the first is prepared (target
                      <= 10 s), the just-in-time preparation per cell (machinable materialising the
                      cell and its run-record, done as workers free up), the driver's peak RSS while
                      it runs, and `seedbench status` on the finished store (target < 2 s).
    dry run           `sweep --dry-run` of --pending cells on an empty store.

Set-up: Ray Tune's extra goes into its own venv, never into the project's .venv:

    python3.11 -m venv /tmp/tune-venv && /tmp/tune-venv/bin/pip install -r bench/requirements-tune.txt

Run (from the project root; ~15 minutes on 2 cores, most of it Tune, the 10,000-cell sweep and the local engine's
200 x 0.5 s; each --repeat adds ~3 minutes):

    .venv/bin/python bench/bench_engine.py [--tune-python /tmp/tune-venv/bin/python] [--cells 200]
        [--seconds 0.5] [--workers 2] [--engines local,ray] [--repeat 1] [--pending 10000] [--json out.json]

Without a Tune venv (or with --tune-python ''), the Tune comparison is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPIN = '''\
"""Synthetic method for bench/bench_engine.py, as a plugin: a cell that sleeps, then trains one tiny step."""

import time

import numpy as np
import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_dataset, register_method, register_model
from seedbench.data.registry import DatasetSpec, RawSplits


class SpinConfig(TrialConfig):
    spin_seconds: float = Field(0.5, ge=0)


def sleep(cfg, model, data, device, seeds):
    time.sleep(cfg.spin_seconds)
    return {"slept": cfg.spin_seconds}


def tiny_data(location):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (48, 1, 4, 4)).astype(np.uint8)
    y = rng.integers(0, 2, 48)
    return RawSplits(x[:32], y[:32], x[32:], y[32:])


register_dataset(DatasetSpec(name="spin_data", classes=2, shape=(1, 4, 4), load=tiny_data, val_size=8))
register_model("spin_model", lambda in_shape, n: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(in_shape)), n)), min_side=1)
register_method(Method(name="spin", config=SpinConfig, optimizer=lambda p, lr, cfg, seed: torch.optim.SGD(p, lr=lr), prepare=sleep,
                       learning_rates={"default": {"*": 0.1}}))
'''

TUNE = """\
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
"""


def make_plugin(base: Path) -> Path:
    plugin = base / "spin.py"
    plugin.write_text(SPIN)
    return plugin


PLUGIN: list[str] = []


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

    return SweepSpec(
        methods=["spin"],
        models=["spin_model"],
        datasets=["spin_data"],
        seeds=list(range(cells)),
        plugins=PLUGIN,
        overrides={"spin_seconds": seconds, "epochs": 1, "batch_size": 16},
        store=str(store),
    )


def cell_seconds(store: Path) -> list[float]:
    return [json.loads(p.read_text())["seconds"] for p in store.rglob("run.json")]


def bench_plan(store: Path, cells: int) -> dict:
    """A --dry-run of `cells` cells on an empty store."""
    from seedbench.sweep.run import dry_run

    t0 = time.time()
    plan = dry_run(spec(store, cells, 0.0))
    return {"cells": cells, "dry_run_s": round(time.time() - t0, 2), "dry_run_new": plan.new}


def bench_sweep(store: Path, cells: int, seconds: float, workers: int, engine: str = "ray") -> dict:
    """One sweep of `cells` spin cells on `engine`; the local engine runs one cell at a time (workers = 1)."""
    from seedbench.sweep.run import run_sweep

    workers = workers if engine == "ray" else 1
    load = os.getloadavg()[0]
    summary = run_sweep(spec(store, cells, seconds), quiet=True, engine=engine)
    assert summary.trained == cells and not summary.failed, (summary.trained, summary.failed)
    times = cell_seconds(store)
    ideal = sum(times) / workers
    wall = summary.seconds
    return {
        "engine": engine,
        "load_at_start": round(load, 2),
        "cells": cells,
        "wall_s": wall,
        "ideal_s": ideal,
        "wall_over_ideal": wall / ideal if ideal else None,
        "overhead_ms_per_cell": (wall * workers - sum(times)) / cells * 1000,
        "driver_ms_per_cell": sum(summary.timings.get(k, 0) for k in ("validate", "plan", "prepare")) / cells * 1000,
        "timings_s": {k: round(v, 3) for k, v in summary.timings.items()},
    }


def bench_zero(store: Path, cells: int, engine: str = "ray") -> dict:
    from seedbench.sweep.run import run_sweep

    summary = run_sweep(spec(store, cells, 0.0), quiet=True, engine=engine)
    assert summary.trained == cells and not summary.failed
    return {
        "engine": engine,
        "cells": cells,
        "wall_s": summary.seconds,
        "ms_per_cell": summary.seconds / cells * 1000,
        "timings_s": {k: round(v, 3) for k, v in summary.timings.items()},
    }


def bench_large(store: Path, cells: int) -> dict:
    """A real sweep of `cells` zero-second cells on the Ray engine: planning, just-in-time preparation,
    the driver's memory while it runs (sampled every 0.2 s), then `seedbench status` on the finished store."""
    import threading

    from seedbench.sweep.run import run_sweep
    from seedbench.sweep.status import sweep_status

    before = rss_mib()[0]
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            samples.append(rss_mib()[0])

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        summary = run_sweep(spec(store, cells, 0.0), quiet=True, engine="ray")
    finally:
        stop.set()
        thread.join()
    assert summary.trained == cells and not summary.failed, (summary.trained, summary.failed[:3])
    t = summary.timings
    t0 = time.time()
    (status,) = sweep_status(store)
    status_s = time.time() - t0
    return {
        "cells": cells,
        "validate_s": round(t["validate"], 2),
        "plan_s": round(t["plan"], 2),
        "plan_total_s": round(t["validate"] + t["plan"], 2),
        "prepare_s": round(t["prepare"], 1),
        "prepare_ms_per_cell": round(t["prepare"] / cells * 1000, 1),
        "wall_s": round(summary.seconds, 1),
        "rss_before_mib": round(before, 1),
        "rss_peak_during_mib": round(max(samples, default=before), 1),
        "status_s": round(status_s, 2),
        "status_finished": status.counts["finished"],
    }


def bench_tune(python: str, cells: int, seconds: float, workers: int) -> dict:
    if not python:
        return {"skipped": "no --tune-python given"}
    if not Path(python).exists():
        return {
            "skipped": f"{python} does not exist; create it with: python3.11 -m venv /tmp/tune-venv && /tmp/tune-venv/bin/pip install -r bench/requirements-tune.txt"
        }
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "tune_bench.py"
        script.write_text(TUNE)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["RAY_AIR_NEW_OUTPUT"] = "0"
        done = subprocess.run(
            [python, str(script), str(cells), str(seconds), str(workers)], capture_output=True, text=True, env=env, cwd=tmp, timeout=3600
        )
    if done.returncode != 0:
        return {"skipped": f"Tune run failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["ideal_s"] = result["cell_seconds"] / workers
    result["wall_over_ideal"] = result["wall"] / result["ideal_s"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=200, help="cells of the wall/ideal, zero-work and Tune runs (0: skip them)")
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engines", default="local,ray", help="engines of the wall/ideal and zero-work runs, side by side")
    parser.add_argument(
        "--repeat", type=int, default=1, help="wall/ideal runs per engine, alternating engines (the machine is shared: report the spread)"
    )
    parser.add_argument("--pending", type=int, default=10000, help="cells of the dry run and the large sweep (0: skip)")
    default_tune = "/tmp/tune-venv/bin/python" if Path("/tmp/tune-venv/bin/python").exists() else ""
    parser.add_argument("--tune-python", default=default_tune, help="python of a venv with bench/requirements-tune.txt ('' skips Tune)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="seedbench-bench-"))
    PLUGIN.append(str(make_plugin(base)))
    from seedbench.registry import load_plugins

    load_plugins(PLUGIN)
    os.environ.pop("MACHINABLE_INDEX", None)
    out: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}, "config": vars(args)}
    try:
        from seedbench.sweep.runners import ray as ray_engine

        t0 = time.time()
        ray_engine.connect(num_cpus=args.workers)
        out["ray_start_s"] = round(time.time() - t0, 2)
        try:
            engines = [e.strip() for e in args.engines.split(",") if e.strip()]
            if args.cells:
                out["engines"] = {engine: [] for engine in engines}
                for round_ in range(args.repeat):
                    for engine in engines if round_ % 2 == 0 else engines[::-1]:  # alternate, so neither always runs first
                        run = bench_sweep(base / f"store-{engine}-{round_}", args.cells, args.seconds, args.workers, engine)
                        out["engines"][engine].append(run)
                        print(json.dumps({"wall_over_ideal": run}), flush=True)
                if "ray" in out["engines"]:
                    out["seedbench"] = min(out["engines"]["ray"], key=lambda r: r["wall_s"])  # the Tune comparison's
                out["zero_work"] = {engine: bench_zero(base / f"store-zero-{engine}", args.cells, engine) for engine in engines}
                print(json.dumps({"zero_work": out["zero_work"]}), flush=True)
            if args.pending:
                out["plan"] = bench_plan(base / "store-plan", args.pending)
                print(json.dumps({"plan": out["plan"]}), flush=True)
                out["large"] = bench_large(base / "store-large", args.pending)
                print(json.dumps({"large": out["large"]}), flush=True)
        finally:
            ray_engine.shutdown()
        time.sleep(2)  # let the engine's Ray go before Tune starts its own on the same cores
        out["tune"] = bench_tune(args.tune_python, args.cells, args.seconds, args.workers) if args.cells else {"skipped": "--cells 0"}
        if "wall" in out["tune"] and "seedbench" in out:
            out["seedbench_over_tune"] = out["seedbench"]["wall_s"] / out["tune"]["wall"]
        out["machine"]["load_avg_at_end"] = os.getloadavg()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(f"engine benchmark ({os.cpu_count()} cores, load {out['machine']['load_avg_at_start'][0]:.1f} at start)")
    for engine, runs in out.get("engines", {}).items():
        workers = args.workers if engine == "ray" else 1
        ratios = sorted(r["wall_over_ideal"] for r in runs)
        median = ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1 : len(ratios) // 2 + 1]) / 2
        spread = f" (runs: {', '.join(f'{x:.3f}' for x in ratios)})" if len(ratios) > 1 else ""
        best = min(runs, key=lambda r: r["wall_over_ideal"])
        print(
            textwrap.dedent(f"""
              {engine} engine: {args.cells} cells x {args.seconds} s on {workers} worker{"s" if workers > 1 else ""}
              wall / ideal          {median:.3f} median{spread}; target <= 1.05
              best run              {best["wall_s"]:.1f} s / {best["ideal_s"]:.1f} s, load {best["load_at_start"]:.1f} at its start
              overhead per cell     {statistics.median(r["overhead_ms_per_cell"] for r in runs):.0f} ms of worker time; driver plan+prepare {statistics.median(r["driver_ms_per_cell"] for r in runs):.1f} ms
              zero-second cells     {out["zero_work"][engine]["ms_per_cell"]:.1f} ms per cell end to end""").rstrip()
        )
    if "wall" in out["tune"]:
        t = out["tune"]
        print(
            f"  Ray Tune              {t['wall']:.1f} s (wall / ideal {t['wall_over_ideal']:.2f}); seedbench / Tune {out['seedbench_over_tune']:.3f} (target <= 0.3)"
        )
    else:
        print(f"  Ray Tune              skipped: {out['tune']['skipped']}")
    if "large" in out:
        g, pl = out["large"], out["plan"]
        print(
            f"  {g['cells']} cells          plan (resolve, look up, list in the store) {g['plan_total_s']:.1f} s; dry run {pl['dry_run_s']:.1f} s (target <= 10 s)"
        )
        print(
            f"  {'':17}     prepared just in time: {g['prepare_ms_per_cell']:.1f} ms per cell ({g['prepare_s']:.0f} s over a {g['wall_s']:.0f} s run of zero-second cells)"
        )
        print(f"  {'':17}     driver RSS {g['rss_before_mib']:.0f} MiB before, {g['rss_peak_during_mib']:.0f} MiB at most while it ran")
        print(f"  {'':17}     status on the finished store {g['status_s']:.2f} s, {g['status_finished']} finished (target < 2 s)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
