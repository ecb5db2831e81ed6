"""One SGD epoch through seedbench's training loop vs a bare PyTorch loop, measured side by side.

Both loops see the same in-memory Fashion-MNIST tensors, the same model and batch size, shuffle every
epoch, drop the last partial batch and evaluate the validation split once at the end of the epoch.
Runs alternate (seedbench, bare, seedbench, bare, ...) so machine noise hits both alike; the ratio of
medians is reported. Target: seedbench / bare <= 1.15.

    python bench/bench_epoch.py [--repeats 3] [--models fc,cnn] [--limit N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from seedbench.data import load_dataset
from seedbench.models import build_model
from seedbench.train.loop import DivergenceRules, TrainSettings, train


def bare_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, lr: float, batch: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(len(x) // batch):
        idx = order[i * batch : (i + 1) * batch]
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        model.eval()
        correct = sum(int((model(xv[j : j + 1000]).argmax(1) == yv[j : j + 1000]).sum()) for j in range(0, len(xv), 1000))
        model.train()
    _ = correct / len(xv)
    return time.perf_counter() - start


def seedbench_epoch(model: nn.Module, data, lr: float, batch: int) -> float:
    settings = TrainSettings(epochs=1, batch_size=batch, data_seed=0, augment_seed=0, divergence=DivergenceRules(enabled=False))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    start = time.perf_counter()
    train(model, opt, data, settings)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="fc,cnn")
    parser.add_argument("--limit", type=int, default=None, help="train images per epoch (default: all 50,000)")
    args = parser.parse_args()
    data = load_dataset("fmnist", limit_train=args.limit)
    # seedbench's train() evaluates the test split only at the end of a run; the bare loop doesn't, so
    # give both the same work: an empty test split.
    data.x_test, data.y_test = data.x_test[:0], data.y_test[:0]
    print(f"fmnist: {len(data.x_train)} train images, batch 32, torch threads {torch.get_num_threads()}")
    print(f"{'model':<6} {'seedbench s':>12} {'bare s':>9} {'ratio':>7}  (target <= 1.15)")
    for name in args.models.split(","):
        ours, bare = [], []
        for r in range(args.repeats + 1):
            torch.manual_seed(r)
            m1 = build_model(name, data.in_shape)
            torch.manual_seed(r)
            m2 = build_model(name, data.in_shape)
            t_ours = seedbench_epoch(m1, data, 0.05, 32)
            t_bare = bare_epoch(m2, data.x_train, data.y_train, data.x_val, data.y_val, 0.05, 32)
            if r > 0:  # the first round warms up allocators and caches
                ours.append(t_ours)
                bare.append(t_bare)
        mo, mb = statistics.median(ours), statistics.median(bare)
        print(f"{name:<6} {mo:>12.2f} {mb:>9.2f} {mo / mb:>7.3f}")


if __name__ == "__main__":
    main()
