"""Do the torch and TensorFlow runners train the same FC to the same accuracy? An equivalence test.

Why: a difference between our numbers and the published (TensorFlow) ones could come from the port
or from the framework. This study holds everything but the framework fixed - FC on Fashion-MNIST,
plain SGD lr 0.25, batch 32, 5 epochs, NO augmentation, each seed's data order from the same
`_Batches` stream in both runners - and asks whether the mean final validation accuracies are
equivalent within +-0.5 points (TOST, statsmodels' ttost_ind, alpha 0.05). The weights differ by
construction: torch draws Glorot-uniform after torch.manual_seed(init_seed) (build_model("fc")), Keras
draws it from the same init_seed with its own generator; equal in distribution, as in a real port.

    .venv/bin/python experiments/tf_parity.py --seeds 10 --budget-minutes 40 --out out/tf_parity

Seeds run torch then TF, seed after seed; a new seed starts only while the time budget leaves room
for it at the pace measured so far, so a slow machine still ends with a balanced (smaller) study.
Each finished run is appended to OUT/runs.jsonl; the summary goes to OUT/summary.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

MARGIN = 0.005  # +-0.5 accuracy points, as a fraction
ALPHA = 0.05
LR, BATCH = 0.25, 32  # docs/methods.md, "Learning rates": FC-FMNIST SGD


def run_torch(data, seeds: dict[str, int], epochs: int) -> dict[str, Any]:
    import torch

    from seedbench.models import build_model
    from seedbench.train.loop import DivergenceRules, TrainSettings, train

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds["init"])
        model = build_model("fc", data.in_shape, data.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    settings = TrainSettings(
        epochs=epochs, batch_size=BATCH, data_seed=seeds["data"], augment_seed=seeds["augment"], augment=False, divergence=DivergenceRules()
    )
    return train(model, optimizer, data, settings)


def run_tensorflow(data, seeds: dict[str, int], epochs: int) -> dict[str, Any]:
    from seedbench.registry import get_method
    from seedbench.train.tf_runner import train_tensorflow

    method = get_method("sgd")
    cfg = method.resolve(
        {"model": "fc", "dataset": "fmnist", "lr": LR, "batch_size": BATCH, "epochs": epochs, "augment": False, "framework": "tensorflow"}
    )
    return train_tensorflow(method, cfg, data, seeds)


def tost(a: list[float], b: list[float]) -> dict[str, Any]:
    """TOST for |mean(a) - mean(b)| < MARGIN, independent samples (pooled variance) and paired by seed.

    Paired is reported too because seed s gives both frameworks the same data order: the samples are
    not fully independent, and pairing removes the shared data-order variance.
    """
    import numpy as np
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    p_ind, lower, upper = ttost_ind(a, b, -MARGIN, MARGIN)
    p_pair, lower_p, upper_p = ttost_paired(a, b, -MARGIN, MARGIN)
    return {
        "margin": MARGIN,
        "alpha": ALPHA,
        "ind": {"p": float(p_ind), "p_lower": float(lower[1]), "p_upper": float(upper[1]), "equivalent": bool(p_ind < ALPHA)},
        "paired": {"p": float(p_pair), "p_lower": float(lower_p[1]), "p_upper": float(upper_p[1]), "equivalent": bool(p_pair < ALPHA)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per framework at most")
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed, first-seed+1, ...")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--budget-minutes", type=float, default=40.0, help="start no seed that would end past this")
    parser.add_argument("--min-seeds", type=int, default=5, help="run at least this many seeds whatever the budget")
    parser.add_argument("--out", type=Path, default=Path("out/tf_parity"))
    parser.add_argument("--summarize", action="store_true", help="only recompute the summary from OUT/runs.jsonl")
    args = parser.parse_args()
    if args.summarize:
        rows = [json.loads(line) for line in (args.out / "runs.jsonl").read_text().splitlines() if line.strip()]
        write_summary(args.out, summarize(rows, args.epochs, train_images=50_000, val_images=10_000))
        return

    from seedbench.data import load_dataset
    from seedbench.seeding import stream_seeds

    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "runs.jsonl"
    log.write_text("")
    data = load_dataset("fmnist")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for done in range(args.seeds):
        seed = args.first_seed + done
        elapsed = time.perf_counter() - started
        if done >= args.min_seeds and elapsed + elapsed / done > args.budget_minutes * 60:
            print(f"time budget: stopping after {done} seeds ({elapsed / 60:.1f} min)", flush=True)
            break
        seeds = stream_seeds(seed)
        for framework, run in (("torch", run_torch), ("tensorflow", run_tensorflow)):
            t0 = time.perf_counter()
            result = run(data, seeds, args.epochs)
            row = {
                "seed": seed,
                "framework": framework,
                "status": result["status"],
                "val_acc": result["val_acc"],
                "val_loss": result["val_loss"],
                "test_acc": result.get("test_acc"),
                "train_loss": result["train_loss"],
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            with log.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

    summary = summarize(rows, args.epochs, len(data.x_train), len(data.x_val))
    summary["wall_seconds"] = time.perf_counter() - started
    write_summary(args.out, summary)


def summarize(rows: list[dict[str, Any]], epochs: int, train_images: int, val_images: int) -> dict[str, Any]:
    """Per-framework mean/std of the final validation accuracy and the TOST over seeds run by both."""
    both = sorted({r["seed"] for r in rows if r["framework"] == "torch"} & {r["seed"] for r in rows if r["framework"] == "tensorflow"})
    by = {fw: [next(r["val_acc"] for r in rows if r["framework"] == fw and r["seed"] == s) for s in both] for fw in ("torch", "tensorflow")}
    return {
        "protocol": {
            "model": "fc",
            "dataset": "fmnist",
            "method": "sgd",
            "lr": LR,
            "batch": BATCH,
            "epochs": epochs,
            "augment": False,
            "train_images": train_images,
            "val_images": val_images,
        },
        "seeds": both,
        "per_framework": {fw: {"mean": statistics.fmean(v), "std": statistics.stdev(v), "n": len(v)} for fw, v in by.items()},
        "difference_torch_minus_tf": statistics.fmean(by["torch"]) - statistics.fmean(by["tensorflow"]),
        "tost": tost(by["torch"], by["tensorflow"]),
        "runs": rows,
    }


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    print("\n| seed | torch val acc | TF val acc |\n|---|---|---|")
    for seed in summary["seeds"]:
        acc = {r["framework"]: r["val_acc"] for r in summary["runs"] if r["seed"] == seed}
        print(f"| {seed} | {100 * acc['torch']:.2f} | {100 * acc['tensorflow']:.2f} |")


if __name__ == "__main__":
    main()
