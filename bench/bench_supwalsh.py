"""Sup-Walsh pretraining throughput, and how much of it t-SNE takes.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_supwalsh.py [--steps 300] [--workers 1,2] [--rounds 1] [--model base]

Each step embeds only K=10 images, but sklearn's Barnes-Hut t-SNE still runs ~1000 gradient-descent
iterations in Python, about 40 ms: for the Base MLP that is most of a step. Part 1 times the sklearn
options that might make one call cheaper and checks whether they change the embedding. Part 2 runs
the same pretraining (same seed, same data) with t-SNE inline ("before") and computed ahead in worker
processes ("after"), and checks that losses and final weights are bit-for-bit identical.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.manifold import TSNE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seedbench.init.walsh import walsh_codes  # noqa: E402
from seedbench.models.zoo import ZOO  # noqa: E402
from seedbench.train.supwalsh import SupWalsh, pretrain, tsne_2d  # noqa: E402

SHAPE = (1, 64, 64)
CLASSES = 10


def time_call(fn, repeats: int) -> tuple[float, np.ndarray]:
    out = fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - start) / repeats, np.asarray(out)


def tsne_options(repeats: int) -> None:
    x = torch.rand(CLASSES, int(np.prod(SHAPE)), generator=torch.Generator().manual_seed(0))
    base = dict(n_components=2, perplexity=5, init="pca", learning_rate="auto", random_state=0)
    variants = {
        "seedbench tsne_2d (barnes_hut, n_jobs=1)": lambda: tsne_2d(x, 0).numpy(),
        "reference: n_jobs=-1": lambda: TSNE(**base, n_jobs=-1).fit_transform(x.numpy()),
        "method='exact'": lambda: TSNE(**base, method="exact").fit_transform(x.numpy()),
    }
    print(f"Part 1: one t-SNE of {CLASSES} images of {SHAPE} ({repeats} calls each)")
    print(f"  {'variant':42s} {'ms/call':>8s}  same embedding")
    reference = None
    for name, fn in variants.items():
        seconds, out = time_call(fn, repeats)
        reference = out if reference is None else reference
        print(f"  {name:42s} {seconds * 1e3:8.1f}  {np.array_equal(out, reference)}")


def run(model_name: str, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int, **kwargs) -> tuple[dict, dict, list[float]]:
    torch.manual_seed(seed)
    model = ZOO[model_name](SHAPE, CLASSES)
    supwalsh = SupWalsh(SHAPE, walsh_codes(CLASSES), generator=torch.Generator().manual_seed(seed))
    stamps: list[float] = []
    epochs = -(-steps // -(-len(y) // 200))
    stats = pretrain(
        model, supwalsh, x, y, epochs=epochs, seed=seed, max_steps=steps, on_step=lambda *_: stamps.append(time.perf_counter()), **kwargs
    )
    return stats, copy.deepcopy(model.state_dict()), stamps


def _median(values: list[float]) -> float:
    return float(np.median(values))


def steady_rate(stamps: list[float], skip: int) -> float:
    """Steps per second after the first `skip` steps (worker start-up excluded)."""
    if len(stamps) <= skip + 1:
        return float("nan")
    return (len(stamps) - 1 - skip) / (stamps[-1] - stamps[skip])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base", choices=sorted(ZOO))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=2000, help="random training images (batches of 200)")
    parser.add_argument("--workers", default="1,2", help="comma-separated t-SNE worker counts to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tsne-repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="repeat all arms, alternating; report medians")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, cpus {os.cpu_count()}")
    tsne_options(args.tsne_repeats)

    g = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.samples, *SHAPE, generator=g)
    y = torch.randint(0, CLASSES, (args.samples,), generator=g)
    print(
        f"\nPart 2: pretraining {args.model} on {args.samples} random {SHAPE} images, {CLASSES} classes, "
        f"{args.steps} steps of batch 200 (seed {args.seed}), {args.rounds} round(s)"
    )
    arms = [("before: t-SNE inline", {"tsne_workers": 0}, 0)]
    arms += [(f"after: t-SNE in {w} worker(s)", {"tsne_workers": w}, 2 * w) for w in map(int, args.workers.split(","))]
    arms += [("no t-SNE (random points)", {"inputs": "random"}, 0)]
    # Arms alternate within each round, so a load change on a shared machine hits them all alike;
    # the table shows per-arm medians over rounds.
    runs: dict[str, list[tuple[dict, float]]] = {name: [] for name, _, _ in arms}
    identical: dict[str, bool] = {}
    for _ in range(args.rounds):
        before_stats = before_state = None
        for name, kwargs, skip in arms:
            stats, state, stamps = run(args.model, x, y, args.steps, args.seed, **kwargs)
            runs[name].append((stats, steady_rate(stamps, skip)))
            if before_state is None:
                before_stats, before_state = stats, state
            same = stats["losses"] == before_stats["losses"] and all(torch.equal(state[k], before_state[k]) for k in state)
            identical[name] = identical.get(name, True) and same
    print(f"  {'arm':28s} {'seconds':>8s} {'batch/s':>8s} {'steady':>8s} {'t-SNE share':>11s} {'t-SNE cpu s':>11s}  identical to before")
    medians = {}
    for name, kwargs, _ in arms:
        med = _median
        row = {
            "seconds": med([s["seconds"] for s, _ in runs[name]]),
            "rate": med([s["batches_per_s"] for s, _ in runs[name]]),
            "steady": med([r for _, r in runs[name]]),
            "share": med([s["tsne_share"] for s, _ in runs[name]]),
            "cpu": med([s["tsne_seconds"] for s, _ in runs[name]]),
        }
        medians[name] = row
        shown = "-" if kwargs.get("inputs") == "random" else str(identical[name])
        print(f"  {name:28s} {row['seconds']:8.2f} {row['rate']:8.2f} {row['steady']:8.2f} {row['share']:10.0%} {row['cpu']:11.2f}  {shown}")
    before = medians[arms[0][0]]
    print("\n  after/before throughput ratio (whole run incl. worker start-up | steady state):")
    for name, _, _ in arms[1:-1]:
        print(f"    {name:28s} {medians[name]['rate'] / before['rate']:5.2f}x | {medians[name]['steady'] / before['steady']:5.2f}x")
    print(
        f"\n  load average (1 min) at start {load_start:.2f}, at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus: "
        "figures from a loaded machine understate what workers gain"
    )


if __name__ == "__main__":
    main()
