"""How much does a random-bases step cost? RBD vs the bare random numbers it needs, and vs SGD.

FC net of docs/methods.md, "Networks" (784-128-10, D = 101,770), d = 250, batch 32. Every contender is
timed round-robin in the same run (so machine noise hits all of them alike), after a warm-up, and the
table reports medians:

    rbd / randn      RBD step (forward+backward+step) over generating the d x D normals alone,
                     with the same chunking (target <= 1.3: the step should be little more than its RNG)
    rbd / sgd        RBD step over an SGD step (no target: this is the price of the method)
    hadamard / sgd   RBD with Walsh-Hadamard bases over an SGD step (target <= 10)
    fpd kept / redrawn   FPD holding its fixed directions in memory over FPD drawing them again each
                     step (keep_directions=False); no target, the figure is the point of keeping them
    fpd kept / sgd   what a kept-basis FPD step costs over SGD (two d x D matrix-vector products)

    python bench/bench_rbd.py [--device cpu|cuda] [--steps N] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seedbench.models import FC, count_parameters  # noqa: E402
from seedbench.optim import FPD, RBD  # noqa: E402
from seedbench.optim.directions import DEFAULT_CHUNK  # noqa: E402

DIMS, BATCH = 250, 32


def timer(device: torch.device) -> Callable[[Callable[[], None]], float]:
    def run(fn: Callable[[], None]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=30, help="timed repetitions per contender (medians)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    device = torch.device(args.device)
    torch.manual_seed(0)

    x = torch.rand(BATCH, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def make(kind: str) -> Callable[[], None]:
        model = FC((1, 28, 28)).to(device)
        if kind == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        elif kind.startswith("fpd"):
            opt = FPD(model.parameters(), lr=0.01, dims=DIMS, seed=1, keep_directions=kind == "fpd_kept")
        else:
            opt = RBD(model.parameters(), lr=0.01, dims=DIMS, bases=kind, seed=1)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        return step

    dim = count_parameters(FC((1, 28, 28)))
    gen = torch.Generator(device=device).manual_seed(1)
    buffer = torch.empty(DEFAULT_CHUNK, dim, device=device)

    def randn_only() -> None:
        for start in range(0, DIMS, DEFAULT_CHUNK):
            rows = min(DEFAULT_CHUNK, DIMS - start)
            torch.randn(rows, dim, generator=gen, device=device, out=buffer[:rows])

    contenders = {
        "rbd": make("gaussian"),
        "hadamard": make("hadamard"),
        "sgd": make("sgd"),
        "randn": randn_only,
        "fpd_redrawn": make("fpd_redrawn"),
        "fpd_kept": make("fpd_kept"),
    }
    clock = timer(device)
    for _ in range(args.warmup):
        for fn in contenders.values():
            clock(fn)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.steps):
        for name, fn in contenders.items():
            times[name].append(clock(fn))
    med = {name: statistics.median(ts) for name, ts in times.items()}

    print(f"device={device} threads={torch.get_num_threads()} D={dim:,} d={DIMS} batch={BATCH} chunk={DEFAULT_CHUNK} steps={args.steps} (medians)")
    print(f"{'contender':<22}{'median ms':>12}")
    for name in ("randn", "sgd", "rbd", "hadamard", "fpd_redrawn", "fpd_kept"):
        print(f"{name:<22}{med[name] * 1e3:>12.3f}")
    print()
    print(f"{'ratio':<22}{'value':>12}{'target':>10}")
    rows = [
        ("rbd / randn", med["rbd"] / med["randn"], "<= 1.3"),
        ("rbd / sgd", med["rbd"] / med["sgd"], "n/a"),
        ("hadamard / sgd", med["hadamard"] / med["sgd"], "<= 10"),
        ("fpd kept / redrawn", med["fpd_kept"] / med["fpd_redrawn"], "n/a"),
        ("fpd kept / sgd", med["fpd_kept"] / med["sgd"], "n/a"),
    ]
    for name, value, target in rows:
        print(f"{name:<22}{value:>12.3f}{target:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
