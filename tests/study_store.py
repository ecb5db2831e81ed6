"""Real stores for the study tests: run folders in the format training writes, read back through DuckDB.

Each run's accuracy is drawn from a model with known parts (an init effect per init seed, a
data-order effect per data seed, noise), so tests can check the analysis against what was put in.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.test_store import make_record, write_run


def write_study_store(
    root: Path,
    *,
    methods: dict[str, float] | None = None,
    init_sd: dict[str, float] | None = None,
    models: Sequence[str] = ("fc",),
    datasets: Sequence[str] = ("digits",),
    init_seeds: Sequence[int] = range(6),
    data_seeds: Sequence[int] = range(5),
    data_sd: float = 0.004,
    noise_sd: float = 0.003,
    seed: int = 0,
    skip: Sequence[tuple[str, int, int]] = (),
    argv: Sequence[str] | None = ("sweep", "experiments/study.yaml", "--store", "STORE"),
) -> Path:
    """Runs of every method x model x dataset x init_seed x data_seed; returns the store folder.

    methods maps a method to its mean accuracy; init_sd to the SD of its init effect. `skip`
    leaves out (method, init_seed, data_seed) cells, to make a design that is not crossed.
    """
    methods = methods or {"sgd": 0.90, "rbd": 0.88}
    init_sd = init_sd or {m: 0.01 for m in methods}
    rng = np.random.default_rng(seed)
    n = 0
    for model in models:
        for dataset in datasets:
            data_effect = rng.normal(0.0, data_sd, len(data_seeds))
            for method, mean in methods.items():
                init_effect = rng.normal(0.0, init_sd[method], len(init_seeds))
                for i, init in enumerate(init_seeds):
                    for j, data in enumerate(data_seeds):
                        if (method, init, data) in skip:
                            continue
                        acc = mean + init_effect[i] + data_effect[j] + rng.normal(0.0, noise_sd)
                        record = make_record(
                            f"r{n}", model=model, seed=0, acc=float(acc), method=method, extra_config={"init_seed": init, "data_seed": data}
                        )
                        record["config"]["dataset"] = dataset
                        write_run(root, f"{method}/{model}/{dataset}/i{init}-d{data}", record)
                        n += 1
    if argv is not None:
        sweeps = root / "sweeps"
        sweeps.mkdir(parents=True, exist_ok=True)
        record = {
            "id": "abc123",
            "created_at": 1.7e9,
            "updated_at": 1.7e9 + 60,
            "engine": "local",
            "argv": [a.replace("STORE", str(root)) for a in argv],
            "methods": sorted(methods),
            "models": list(models),
            "datasets": list(datasets),
            "seeds": [0],
            "cells": [],
        }
        (sweeps / "abc123.json").write_text(json.dumps(record))
    return root


def cli_parser() -> argparse.ArgumentParser:
    """The analysis and study commands on a parser of their own (cli/main.py wires them for users)."""
    from seedbench.cli import analysis, studies

    parser = argparse.ArgumentParser(prog="seedbench")
    sub = parser.add_subparsers(dest="command", required=True)
    analysis.add_parsers(sub)
    studies.add_parsers(sub)
    return parser


def run_command(argv: Sequence[str]) -> int:
    """Parse and run one command in this process; SeedbenchError propagates to the test."""
    args = cli_parser().parse_args(list(argv))
    return int(args.func(args) or 0)
