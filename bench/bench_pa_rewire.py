"""How fast is pa_rewire_, and does it sample the same thing as a plain NumPy implementation?

The NumPy contender below is the algorithm of docs/methods.md, "PA rewiring" written the obvious way: a loop over
rows with numpy Generator.choice(n, size=n, replace=False, p=p) for the Plackett-Luce order (the way
the reference samples). Both run in the same process on the same base weights:

    layer          conv 512x512x3x3 (orthogonal) and Linear 1000x2048 (orthogonal)
    time           median wall time of one full rewiring (rows pass + columns pass)
    speedup        numpy-choice time / pa_rewire_ time (target >= 10x); on CPU also the torch-only
                   kernel (backend="torch"), which is what runs on CUDA
    same law?      over --seeds seeds: mean variance of column and row sums after rewiring for both,
                   and two-sample Kolmogorov-Smirnov tests on the pooled column and row strengths
    ResNet-50      seconds to rewire all 53 conv + 1 fc weights of a ResNet-50 (Kaiming-normal)

    python bench/bench_pa_rewire.py [--device cpu|cuda] [--seeds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seedbench.init import pa_rewire_, strengths  # noqa: E402


# ------------------------------------------------------------------------------- the NumPy contender
def numpy_pass(a: np.ndarray, rng: np.random.Generator) -> None:
    n_rows, n_cols = a.shape
    s = np.zeros(n_cols)
    for r in range(1, n_rows):
        s += a[r - 1]
        p = s + abs(s.min()) + 1
        p /= p.sum()
        order = rng.choice(n_cols, size=n_cols, replace=False, p=p)
        a[r, order] = np.sort(a[r])


def numpy_pa_rewire(w: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = w.reshape(w.shape[0], -1).copy()
    numpy_pass(m, rng)
    mt = np.ascontiguousarray(m.T)
    numpy_pass(mt, rng)
    return np.ascontiguousarray(mt.T).reshape(w.shape)


# ------------------------------------------------------------------------------------------- shapes
def resnet50_weight_shapes() -> list[tuple[int, ...]]:
    """conv1, bottleneck stages [3, 4, 6, 3] x widths 64/128/256/512 (expansion 4), downsamples, fc."""
    shapes: list[tuple[int, ...]] = [(64, 3, 7, 7)]
    in_ch = 64
    for blocks, width in zip((3, 4, 6, 3), (64, 128, 256, 512)):
        out_ch = width * 4
        for b in range(blocks):
            shapes += [(width, in_ch, 1, 1), (width, width, 3, 3), (out_ch, width, 1, 1)]
            if b == 0:
                shapes.append((out_ch, in_ch, 1, 1))  # downsample (stride or channel change)
            in_ch = out_ch
    shapes.append((1000, 2048))
    return shapes


# -------------------------------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def variances(w: torch.Tensor) -> tuple[float, float]:
    col, row = strengths(w)
    return float(col.var()), float(row.var())


def bench_layer(name: str, w: torch.Tensor, device: torch.device, seeds: int) -> bool:
    print(f"\n== {name} {tuple(w.shape)}, orthogonal, {seeds} seeds ==")
    w_np = w.cpu().numpy()
    ours_dev = w.to(device)
    ref_times, ours_times, torch_times = [], [], []
    ref_out, ours_out = [], []
    pa_rewire_(ours_dev.clone(), 0)  # warm-up (CUDA context, allocator, first-call costs)
    for seed in range(seeds):
        start = time.perf_counter()
        ref_out.append(torch.from_numpy(numpy_pa_rewire(w_np, seed)))
        ref_times.append(time.perf_counter() - start)
        x = ours_dev.clone()
        ours_times.append(timed(lambda: pa_rewire_(x, seed), device))
        ours_out.append(x.cpu())
        if device.type == "cpu":
            y = ours_dev.clone()
            torch_times.append(timed(lambda: pa_rewire_(y, seed, backend="torch"), device))
            assert torch.equal(x, y), "torch and numpy kernels disagree"
    t_ref, t_ours = statistics.median(ref_times), statistics.median(ours_times)
    print(f"numpy Generator.choice loop   : {t_ref:8.3f} s")
    print(f"pa_rewire_ ({device.type}, default)    : {t_ours:8.3f} s   speedup {t_ref / t_ours:6.1f}x  (target >= 10x)")
    if torch_times:
        t_torch = statistics.median(torch_times)
        print(f"pa_rewire_ (cpu, torch kernel): {t_torch:8.3f} s   speedup {t_ref / t_torch:6.1f}x")

    before_col, before_row = variances(w)
    print(f"strength variance before      : columns {before_col:.4f}  rows {before_row:.4f}")
    ok = True
    for label, outs in (("numpy-choice", ref_out), ("pa_rewire_", ours_out)):
        v = np.array([variances(o) for o in outs])
        print(f"after, {label:22s}: columns {v[:, 0].mean():.4f} +- {v[:, 0].std():.4f}  rows {v[:, 1].mean():.4f} +- {v[:, 1].std():.4f}")
    for axis, label in ((0, "column"), (1, "row")):
        pooled_ref = torch.cat([strengths(o)[axis] for o in ref_out]).numpy()
        pooled_ours = torch.cat([strengths(o)[axis] for o in ours_out]).numpy()
        ks = stats.ks_2samp(pooled_ref, pooled_ours)
        verdict = "same" if ks.pvalue > 1e-3 else "DIFFERENT"
        ok &= ks.pvalue > 1e-3
        print(f"KS test, {label + ' strengths':20s}: D = {ks.statistic:.4f}  p = {ks.pvalue:.3f}  -> {verdict}")
    return ok and t_ref / t_ours >= 10


def bench_resnet50(device: torch.device) -> None:
    shapes = resnet50_weight_shapes()
    gen = torch.Generator(device=device).manual_seed(0)
    layers = [nn.init.kaiming_normal_(torch.empty(s, device=device), nonlinearity="relu", generator=gen) for s in shapes]
    n_params = sum(w.numel() for w in layers)
    print(f"\n== ResNet-50 weights: {len(shapes)} tensors ({len(shapes) - 1} conv + fc), {n_params:,} weights ==")
    contenders = [("default", {}, 3)] + ([("torch kernel", {"backend": "torch"}, 1)] if device.type == "cpu" else [])
    for label, kwargs, repeats in contenders:
        times = []
        for _ in range(repeats):
            work = [w.clone() for w in layers]
            times.append(timed(lambda: [pa_rewire_(w, i, **kwargs) for i, w in enumerate(work)], device))
        print(f"rewire all layers ({device.type}, {label}): {statistics.median(times):.2f} s (median of {repeats})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per layer for timing and the law check")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, numpy {np.__version__}, device {device}, torch threads {torch.get_num_threads()}")

    gen = torch.Generator().manual_seed(1)
    cases = {
        "conv": nn.init.orthogonal_(torch.empty(512, 512, 3, 3), generator=gen),
        "linear": nn.init.orthogonal_(torch.empty(1000, 2048), generator=gen),
    }
    ok = all([bench_layer(name, w, device, args.seeds) for name, w in cases.items()])
    bench_resnet50(device)
    print(f"\n{'PASS' if ok else 'FAIL'}: speedup >= 10x and same sampling law on both layers")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
