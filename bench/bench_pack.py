"""Seeds per hour: K cells trained as one pack (seedbench.train.packed) vs the same K cells one by one.

Both sides do the same work per seed: `steps` SGD steps (batch 32) of one epoch over the first
steps x 32 images of a Fashion-MNIST-sized set, then a validation pass over a fifth as many images
(the 50,000 / 10,000 proportion of the study). Solo is loop.train on one seed (every seed costs the
same, so one stands for K); packed is train_packed on K seeds. The two alternate, `--repeats` times,
after a warm-up round, and the medians give

    seeds/h solo = 3600 / t_solo        seeds/h packed = K * 3600 / t_pack

with seeds/h scaled to one epoch of the full 50,000 images (1,562 steps) per seed. The ratio packed /
solo is the median of the ratios of back-to-back pairs (a pair shares the machine's load of the
moment), with their range; the seeds/h columns are medians of each side.

Fewer steps at large K keep the whole run short (`--steps` is the step count at K = 1; a pack of K
runs max(--min-steps, steps // K) steps, and its solo partner the same). On a GPU (`--device cuda`)
the peak memory of each pack (torch.cuda.max_memory_allocated) is reported as well.

    python bench/bench_pack.py                      # FC and CNN, K = 1..64, CPU, 2 threads
    python bench/bench_pack.py --device cuda
    python bench/bench_pack.py --models fc --ks 1,8 --methods sgd,rbd_hadamard,nes
    python bench/bench_pack.py --plugin my_method.py --methods mine --models fc --ks 1,4,8,16

Any registered method can be measured (a plugin's with --plugin): its optimizer is made by its own
factory with its default config and lr for the model on fmnist, and its pack steps as a sweep's would
(its `packed_step`). What this prints is what goes into a method's `pack_sizes` (docs/extending.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from seedbench.data.datasets import Dataset
from seedbench.models import build_model
from seedbench.optim import NES, RBD
from seedbench.registry import get_method, load_plugins
from seedbench.train.loop import DivergenceRules, TrainSettings, train
from seedbench.train.packed import PackMember, PackSettings, train_packed

BATCH = 32
N_IMAGES = 50_000

# the study's settings (docs/methods.md): SGD rates of table 1 for FMNIST, d = 250
OPTIMIZERS: dict[str, Callable[[torch.nn.Module, str, int], torch.optim.Optimizer]] = {
    "sgd": lambda m, model, seed: torch.optim.SGD(m.parameters(), lr=0.25 if model == "fc" else 0.0625),
    "rbd_hadamard": lambda m, model, seed: RBD(m.parameters(), lr=0.5, dims=250, bases="hadamard", seed=seed),
    "rbd": lambda m, model, seed: RBD(m.parameters(), lr=0.5, dims=250, seed=seed),
    "nes": lambda m, model, seed: NES(m.parameters(), lr=0.5, dims=250, seed=seed),
}


def synthetic(n: int, device: str, seed: int = 0) -> Dataset:
    """Fashion-MNIST-sized random images (the cost of a step does not depend on what the pixels show)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    empty_x, empty_y = x[:0], y[:0]
    return Dataset(name="fmnist", x_train=x, y_train=y, x_val=x, y_val=y, x_test=empty_x, y_test=empty_y, num_classes=10, source="synthetic").to(
        device
    )


def portion(data: Dataset, steps: int) -> Dataset:
    """One epoch of `steps` steps and a validation split a fifth its size; no test split (both sides skip it)."""
    n_train = steps * BATCH
    return Dataset(
        name=data.name,
        x_train=data.x_train[:n_train],
        y_train=data.y_train[:n_train],
        x_val=data.x_val[-(n_train // 5) :],
        y_val=data.y_val[-(n_train // 5) :],
        x_test=data.x_test,
        y_test=data.y_test,
        num_classes=10,
        source=data.source,
    )


def optimizer_for(method: str, model: torch.nn.Module, name: str, seed: int) -> torch.optim.Optimizer:
    """The bench's study settings for a built-in, else the registered method's own factory and defaults."""
    if method in OPTIMIZERS:
        return OPTIMIZERS[method](model, name, seed)
    found = get_method(method)
    cfg = found.resolve({"model": name, "dataset": "fmnist"})
    return found.optimizer(model.parameters(), cfg.lr, cfg, seed)


def packed_step(method: str) -> str | None:
    """How a sweep's pack of this method steps (Method.packed_step); the bench's variants name their method first."""
    return get_method(method.split("_", 1)[0] if method in OPTIMIZERS else method).packed_step


def model_for(name: str, seed: int, device: str) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, (1, 28, 28)).to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_solo(name: str, method: str, data: Dataset, device: str) -> float:
    model = model_for(name, 0, device)
    opt = optimizer_for(method, model, name, 0)
    settings = TrainSettings(epochs=1, batch_size=BATCH, data_seed=0, augment_seed=0, device=device, divergence=DivergenceRules(mode="none"))
    sync(device)
    start = time.perf_counter()
    train(model, opt, data, settings)
    sync(device)
    return time.perf_counter() - start


def time_pack(name: str, method: str, k: int, data: Dataset, device: str, conv: str) -> tuple[float, float | None]:
    members = []
    for i in range(k):
        model = model_for(name, i, device)
        members.append(PackMember(model, optimizer_for(method, model, name, i), data_seed=i, augment_seed=i, divergence=DivergenceRules(mode="none")))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    train_packed(members, data, PackSettings(epochs=1, batch_size=BATCH, device=device, conv=conv, packed_step=packed_step(method)))
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="fc,cnn")
    parser.add_argument("--methods", default="sgd", help=f"comma-separated: {', '.join(OPTIMIZERS)} or any registered method")
    parser.add_argument("--plugin", action="append", default=[], help="a plugin file or module whose methods to measure")
    parser.add_argument("--ks", default="1,4,8,16,32,64")
    parser.add_argument("--steps", default="fc=512,cnn=64", help="steps at K = 1 per model")
    parser.add_argument("--min-steps", type=int, default=4)
    parser.add_argument("--conv", default="loop,grouped", help="CNN conv modes to measure (PackSettings.conv)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_plugins(args.plugin)
    torch.set_num_threads(args.threads)
    steps_at_1 = {kv.split("=")[0]: int(kv.split("=")[1]) for kv in args.steps.split(",")}
    data = synthetic(N_IMAGES, args.device)
    ks = [int(k) for k in args.ks.split(",")]
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, batch {BATCH}, "
        f"synthetic 28x28x1 set of {N_IMAGES} images, median of {args.repeats} (after a warm-up)"
    )
    header = (
        f"{'model':<5} {'method':<12} {'conv':<8} {'K':>3} {'steps':>5} {'solo s/seed':>11} {'pack s/seed':>11} "
        f"{'solo seeds/h':>12} {'pack seeds/h':>12} {'ratio':>6} {'range':>11}"
    )
    if args.device.startswith("cuda"):
        header += f" {'peak MiB':>9}"
    print(header)
    for name in args.models.split(","):
        for method in args.methods.split(","):
            modes = args.conv.split(",") if name != "fc" else ["-"]
            for conv in modes:
                for k in ks:
                    steps = max(args.min_steps, steps_at_1[name] // k)
                    part = portion(data, steps)
                    solo, pack, ratios, peaks = [], [], [], []
                    for r in range(args.repeats + 1):
                        t_solo = time_solo(name, method, part, args.device)
                        t_pack, peak = time_pack(name, method, k, part, args.device, "auto" if conv == "-" else conv)
                        if r > 0:  # the first round warms up allocators and caches
                            solo.append(t_solo)
                            pack.append(t_pack / k)
                            ratios.append(k * t_solo / t_pack)  # a pair measured back to back shares the load
                            peaks.append(peak)
                    ts, tp, ratio = statistics.median(solo), statistics.median(pack), statistics.median(ratios)
                    epoch = (N_IMAGES // BATCH) / steps  # seeds/h counted in one-epoch seeds of the full set
                    line = (
                        f"{name:<5} {method:<12} {conv:<8} {k:>3} {steps:>5} {ts:>11.3f} {tp:>11.3f} "
                        f"{3600 / (ts * epoch):>12.0f} {3600 / (tp * epoch):>12.0f} {ratio:>6.2f} "
                        f"{min(ratios):>5.2f}-{max(ratios):<5.2f}"
                    )
                    if args.device.startswith("cuda"):
                        line += f" {max(p for p in peaks if p is not None):>9.0f}"
                    print(line, flush=True)


if __name__ == "__main__":
    main()
