"""How fast is SQL over a big store? 10,000 runs x 100 epochs, in the real run-folder format.

The synthetic store mimics machinable's layout (nested hash folders, a run folder holding run.json,
epochs.jsonl and machinable's own files, an execution folder inside it) and seedbench's records
(4 methods x 5 models x 5 datasets x 100 seeds; some diverged with "nan" losses, some failed, some
still running; one method logs an optimizer diagnostic per epoch). It is generated once and reused
from --dir. Measured, each as the median of --repeats:

    cold build      Store(path) with no cache: every run folder read, shards written
    warm open       Store(path) with an up-to-date cache: scan + fingerprints + views
    report query    method x model x dataset: n, diverged, failed, mean/std of val_acc, test_acc
    epochs query    mean val_acc per method per epoch (epochs JOIN runs, 1M rows)
    ... + open      the same, including opening the store (what one command costs in-process)
    ... CLI         `seedbench query` end to end in a fresh process (Python start-up and imports too)
    refresh         re-open after 10 runs gained an epoch line (incremental update)

Targets: every warm query under 2 s.

    python bench/bench_store.py [--runs 10000] [--epochs 100] [--dir /tmp/seedbench-bench-store] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seedbench.store import CACHE_DIRNAME, Store  # noqa: E402

METHODS = {
    "sgd": {"momentum": 0.0, "weight_decay": 0.0},
    "rbd": {"num_bases": 250, "normalize": True},
    "nes": {"population": 50, "sigma": 0.01},
    "fpd": {"num_bases": 250, "compartments": 4},
}
MODELS = {"fc": 101_770, "cnn": 93_322, "resnet": 270_000, "vgg": 1_500_000, "mlp2": 200_000}
DATASETS = {"mnist": 0.95, "fmnist": 0.85, "cifar10": 0.55, "digits": 0.9, "svhn": 0.8}

REPORT_SQL = """SELECT method, model, dataset,
  count(*) FILTER (status = 'finished') AS n,
  count(*) FILTER (status = 'diverged') AS diverged,
  count(*) FILTER (status = 'failed') AS failed,
  avg(val_acc) FILTER (status = 'finished') AS val_mean, stddev_samp(val_acc) FILTER (status = 'finished') AS val_std,
  avg(test_acc) FILTER (status = 'finished') AS test_mean, stddev_samp(test_acc) FILTER (status = 'finished') AS test_std
FROM runs GROUP BY ALL ORDER BY ALL"""
EPOCHS_SQL = """SELECT r.method, e.epoch, avg(e.val_acc) AS val_acc, count(*) AS n
FROM epochs e JOIN runs r USING (run_id) GROUP BY ALL ORDER BY ALL"""

MACHINABLE_FILES = {
    "model.json": '{"version": [], "module": "components.sgd"}',
    "id.json": '{"uuid": "x"}',
    "cached": "true",
    "updated_at": "2026-01-01T00:00:00",
}


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _epochs(rng: np.random.Generator, n: int, final: float, diverge: bool, diagnostics: bool) -> list[dict]:
    rows = []
    for epoch in range(1, n + 1):
        progress = 1 - math.exp(-4 * epoch / 100)
        acc = float(np.clip(0.1 + (final - 0.1) * progress + rng.normal(0, 0.005), 0, 1))
        loss = float(-math.log(max(acc, 1e-3)) + rng.normal(0, 0.01))
        if diverge and epoch == n:
            loss, acc = math.nan, 0.1
        row = {
            "epoch": epoch,
            "train_loss": _num(loss),
            "train_acc": acc,
            "val_loss": _num(loss * 1.05),
            "val_acc": acc * 0.99,
            "seconds": 1.0 + rng.random(),
            "images_per_s": 50_000 + 1000 * rng.random(),
        }
        if diagnostics:
            row["cosine"] = float(rng.normal(0.1, 0.02))
        rows.append(row)
    return rows


def write_run(folder: Path, rng: np.random.Generator, i: int, method: str, model: str, dataset: str, seed: int, epochs: int) -> None:
    """One run folder in the format seedbench.train.trial writes (plus machinable's own files)."""
    folder.mkdir(parents=True)
    for name, text in MACHINABLE_FILES.items():
        (folder / name).write_text(text)
    (folder / "related").mkdir()
    (folder / "related" / "metadata.jsonl").write_text("{}\n")
    execution = folder / f"{i:032x}" / "2026-01-01_000000"
    execution.mkdir(parents=True)
    (execution / "host.json").write_text('{"hostname": "node"}')
    roll = rng.random()
    status = "finished" if roll > 0.035 else "diverged" if roll > 0.015 else "failed" if roll > 0.005 else "running"
    n = {"finished": epochs, "diverged": int(rng.integers(4, epochs)), "failed": int(rng.integers(0, 5)), "running": int(rng.integers(1, epochs))}[
        status
    ]
    final = DATASETS[dataset] - 0.05 * list(METHODS).index(method) + rng.normal(0, 0.01)
    curve = _epochs(rng, n, final, status == "diverged", method == "rbd")
    with open(folder / "epochs.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in curve)
    started = 1.79e9 + i * 60
    config = {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "init_seed": None,
        "data_seed": None,
        "augment_seed": None,
        "epochs": epochs,
        "batch_size": 32,
        "lr": None,
        "lr_table": "default",
        "val_size": None,
        "limit_train": None,
        "augment": False,
        "init": "xavier_uniform",
        "stabilize": False,
        "rewire": False,
        "data_dir": None,
        "device": "auto",
        "num_threads": None,
        "diverge_stop": True,
        "num_cpus": 1.0,
        "num_gpus": 0.0,
        "resources": {},
        "method": method,
        **METHODS[method],
    }
    record = {
        "run_id": f"run{i:08d}",
        "method": method,
        "config": config,
        "lr": 0.05,
        "status": status,
        "host": "node",
        "python": "3.11.7",
        "torch": "2.13.0",
        "started_at": started,
    }
    if status != "running":
        last = curve[-1] if curve else {}
        record.update(
            {
                "reason": "nan loss" if status == "diverged" else None,
                "epochs_completed": n,
                "train_seconds": float(n),
                "finished_at": started + n + 5,
                "seconds": n + 5.0,
                "D": MODELS[model],
                "device": "cpu",
                "seeds": {"init": seed * 7 + 1, "data": seed * 7 + 2, "augment": seed * 7 + 3, "method": seed * 7 + 4},
            }
        )
        if curve:
            record.update({k: last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")} | {"images_per_s": last["images_per_s"]})
        if status == "finished":
            record.update({"test_loss": last["val_loss"], "test_acc": last["val_acc"] * 0.995})
        if status == "failed":
            record["error"] = "RuntimeError: CUDA out of memory"
    (folder / "run.json").write_text(json.dumps(record, indent=1))


def generate(root: Path, runs: int, epochs: int) -> None:
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == f"{runs}x{epochs}":
        return
    if root.exists():
        shutil.rmtree(root)
    print(f"generating {runs} runs x {epochs} epochs in {root} (once; reused afterwards) ...", flush=True)
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    cells = [(m, mo, d) for m in METHODS for mo in MODELS for d in DATASETS]
    for i in range(runs):
        method, model, dataset = cells[i % len(cells)]
        seed = i // len(cells)
        folder = root / f"{zlib.crc32(method.encode()):024x}" / f"{(i % 97):032x}" / f"{i:024x}" / f"{(i * 2654435761) % 2**128:032x}"
        write_run(folder, rng, i, method, model, dataset, seed, epochs)
    marker.write_text(f"{runs}x{epochs}")
    print(f"generated in {time.perf_counter() - start:.1f} s", flush=True)


def timed(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_seconds(root: Path, sql: str, repeats: int) -> float:
    """A fresh `seedbench query` process (until cli.py wires it, via seedbench.cli.store's main)."""
    cmd = [sys.executable, "-m", "seedbench.cli.store", "query", sql, "--store", str(root), "--format", "csv"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    def run() -> None:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise SystemExit(result.stderr)

    return timed(run, repeats)


def append_epoch(root: Path, count: int) -> dict[Path, bytes]:
    """Make `count` running runs gain an epoch, as a live sweep would; returns the files' old bytes."""
    running = [p.parent for p in sorted(root.rglob("run.json")) if '"status": "running"' in p.read_text()][:count]
    old = {}
    for folder in running:
        path = folder / "epochs.jsonl"
        old[path] = path.read_bytes()
        with open(path, "a") as f:
            f.write(
                json.dumps({"epoch": 999, "train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.6, "val_acc": 0.79, "seconds": 1.0, "images_per_s": 1.0})
                + "\n"
            )
    return old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/seedbench-bench-store"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    root = args.dir / f"{args.runs}x{args.epochs}"
    generate(root, args.runs, args.epochs)

    shutil.rmtree(root / CACHE_DIRNAME, ignore_errors=True)
    start = time.perf_counter()
    store = Store(root, warn=None)
    cold = time.perf_counter() - start
    n_runs = int(store.query("SELECT count(*) AS n FROM runs")["n"].iloc[0])
    n_epochs = int(store.query("SELECT count(*) AS n FROM epochs")["n"].iloc[0])
    assert store.query(REPORT_SQL).shape[0] == len(METHODS) * len(MODELS) * len(DATASETS)

    figures = {
        "cold build (s)": cold,
        "warm open (s)": timed(lambda: Store(root, warn=None), args.repeats),
        "report query (s)": timed(lambda: store.query(REPORT_SQL), args.repeats),
        "report query + open (s)": timed(lambda: Store(root, warn=None).query(REPORT_SQL), args.repeats),
        "report query, CLI process (s)": cli_seconds(root, REPORT_SQL, args.repeats),
        "epochs query (s)": timed(lambda: store.query(EPOCHS_SQL), args.repeats),
        "epochs query + open (s)": timed(lambda: Store(root, warn=None).query(EPOCHS_SQL), args.repeats),
        "epochs query, CLI process (s)": cli_seconds(root, EPOCHS_SQL, args.repeats),
    }
    originals = append_epoch(root, 10)
    try:
        start = time.perf_counter()
        refreshed = Store(root, warn=None)
        figures[f"refresh after {len(originals)} runs changed (s)"] = time.perf_counter() - start
    finally:  # keep the generated store as generated, for the next run
        for path, data in originals.items():
            path.write_bytes(data)
    assert refreshed.last_refresh is not None and len(refreshed.last_refresh.read) == len(originals)
    cache_mb = sum(p.stat().st_size for p in (root / CACHE_DIRNAME).iterdir()) / 1e6

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"store benchmark: {n_runs} runs, {n_epochs} epoch rows, cache {cache_mb:.1f} MB, {os.cpu_count()} CPUs",
        caption=f"median of {args.repeats}; target: warm queries < 2 s",
    )
    table.add_column("measure")
    table.add_column("seconds", justify="right")
    table.add_column("target", justify="right")
    for name, value in figures.items():
        target = "< 2" if "query" in name else ""
        ok = "" if not target else (" ok" if value < 2 else " MISSED")
        table.add_row(name.removesuffix(" (s)"), f"{value:.3f}", target + ok)
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"runs": n_runs, "epoch_rows": n_epochs, "cache_mb": cache_mb, **figures}, indent=1))


if __name__ == "__main__":
    main()
