"""Sup-Walsh pretraining (docs/methods.md, "Sup-Walsh"), as a plain library: no machinable, no data loaders.

A linear "support" network turns a 2-D point per class (t-SNE of one image per class, or random) and
the class's code into a synthetic image; the main classifier learns to label those images, and
afterwards Sup-Walsh is thrown away and the classifier keeps its weights. Because the class code is
multiplied into the input, the pretraining task is trivially solvable; the ablation arms (random 2-D
points, one-hot/random codes, `compute_matched_control`) exist to tell whatever the method does apart
from "extra Adam steps".

Reproducibility: the shuffle, the per-class picks, the random points and every t-SNE's random_state
are derived from the run seed and the step number, never from global RNG state or from the model. So
the t-SNE of future batches can be computed ahead in worker processes (`tsne_workers`) and the run
is bit-for-bit the one computed inline. Dropout and stochastic depth inside the main model draw from
the global RNG, which is forked and seeded from the run seed for the duration of the run.

Missing classes: a batch that lacks a class gets that class's image from the whole training set (the
pool), so every step sees all K classes and t-SNE always embeds K points. A class absent from the
training set altogether is skipped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.manifold import TSNE
from torch import nn

from seedbench.seeding import derive_seed

# Per-coordinate spread of random 2-D points. Measured: t-SNE of 10 images (perplexity 5) gives
# coordinates with a standard deviation of roughly 30-50, so the random arm feeds Sup-Walsh inputs
# of the same size and differs only in carrying no information about the images.
RANDOM_2D_SCALE = 40.0


# --------------------------------------------------------------------------------------- inputs
def select_one_per_class(labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One random position per class present in `labels`: (positions, classes), in class order.

    Classes missing from `labels` are simply absent from the result, so the caller decides what to do
    with them (`pretrain` draws them from the whole training set).
    """
    labels = labels.detach().cpu()
    positions, classes = [], []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        if len(members):
            positions.append(int(members[torch.randint(len(members), (1,), generator=generator)]))
            classes.append(c)
    return torch.tensor(positions, dtype=torch.long), torch.tensor(classes, dtype=torch.long)


def default_perplexity(num_points: int) -> float:
    """5 as in the reference for 10 classes; t-SNE needs perplexity < number of points."""
    return float(min(5, num_points - 1))


def tsne_2d(x: torch.Tensor, seed: int, perplexity: float | None = None) -> torch.Tensor:
    """t-SNE of K flattened images (as float32) to K 2-D points, deterministic in `seed`.

    Barnes-Hut (sklearn's default, which the reference used); n_jobs does not change the result and
    is left at one thread so that it does not compete with training for cores. With init="pca" the
    seed only enters through sklearn's randomized PCA, which is nearly exact for so few points, so
    two seeds often give the same embedding (or one that differs through rounding); what matters is
    that one seed always gives the same one. A single point maps to the origin: nothing to embed.
    """
    points = x.detach().cpu().reshape(len(x), -1).float().numpy()
    if len(points) < 2:
        return torch.zeros(len(points), 2)
    tsne = TSNE(
        n_components=2,
        perplexity=default_perplexity(len(points)) if perplexity is None else perplexity,
        init="pca",
        learning_rate="auto",
        random_state=int(seed) % 2**32,
    )
    return torch.from_numpy(np.ascontiguousarray(tsne.fit_transform(points), dtype=np.float32))


def random_2d(num_points: int, generator: torch.Generator | None = None, scale: float = RANDOM_2D_SCALE) -> torch.Tensor:
    """Gaussian 2-D points of t-SNE's typical spread: the ablation arm's image-free inputs."""
    return torch.randn(num_points, 2, generator=generator) * scale


def _timed_tsne(x: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Worker-process entry point: the embedding and the seconds it took."""
    start = time.perf_counter()
    points = tsne_2d(torch.from_numpy(x), seed).numpy()
    return points, time.perf_counter() - start


# --------------------------------------------------------------------------------------- network
class SupWalsh(nn.Module):
    """Linear(2,4) -> Linear(4,8) -> Linear(8,n) -> x code[class] -> Linear(n, C*H*W) -> (C, H, W).

    Deliberately linear with no activations, as in the reference. `codes` ([K, n], see
    seedbench.init.walsh) is a buffer, so it moves with the module and is never trained. With a
    `generator`, the layers get PyTorch's default init drawn from it instead of the global RNG.
    """

    def __init__(self, out_shape: tuple[int, int, int], codes: torch.Tensor, *, generator: torch.Generator | None = None):
        super().__init__()
        self.out_shape = tuple(int(v) for v in out_shape)
        n = codes.shape[1]
        self.embed = nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 8), nn.Linear(8, n))
        self.decode = nn.Linear(n, math.prod(self.out_shape))
        self.register_buffer("codes", codes.detach().clone().float())
        if generator is not None:
            for layer in (*self.embed, self.decode):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    @property
    def num_classes(self) -> int:
        return self.codes.shape[0]

    def forward(self, points: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(points) * self.codes[classes]
        return self.decode(hidden).view(len(points), *self.out_shape)


# --------------------------------------------------------------------------------------- training
def _sub_seed(base: int, *keys: int) -> int:
    """An independent 63-bit seed for (base, keys): one per purpose and per step."""
    state = np.random.SeedSequence([base, *keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _device_of(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@contextlib.contextmanager
def _forked_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global RNG that dropout and stochastic depth draw from, and restore the caller's after.

    The model's own random layers make pretraining reproducible only if their RNG is seeded from the
    run seed too; forking keeps that from disturbing whatever the caller does next.
    """
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield


class _Snapshot:
    """The best state so far, copied into buffers allocated once (VGG-19 is 0.56 GB a copy)."""

    def __init__(self, modules: list[nn.Module]):
        self.modules = modules
        self.states: list[dict[str, torch.Tensor]] | None = None

    def take(self) -> None:
        if self.states is None:
            self.states = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self.modules]
            return
        with torch.no_grad():
            for module, state in zip(self.modules, self.states):
                for key, value in module.state_dict().items():
                    state[key].copy_(value)

    def restore(self) -> None:
        if self.states is not None:
            for module, state in zip(self.modules, self.states):
                module.load_state_dict(state)


def _plan(
    y_train: torch.Tensor, num_classes: int, epochs: int, batch_size: int, seed: int, max_steps: int | None
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(step, chosen training indices, their classes) for every step; depends only on labels and seed."""
    data_gen = torch.Generator().manual_seed(derive_seed(seed, "data"))
    pick_gen = torch.Generator().manual_seed(_sub_seed(derive_seed(seed, "method"), 0))
    by_class = [torch.nonzero(y_train == c).flatten() for c in range(num_classes)]
    n, step = len(y_train), 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=data_gen)
        for start in range(0, n, batch_size):  # the last, partial batch is kept, as in the reference
            if max_steps is not None and step >= max_steps:
                return
            batch = order[start : start + batch_size]
            positions, present = select_one_per_class(y_train[batch], num_classes, pick_gen)
            chosen = dict(zip(present.tolist(), batch[positions].tolist()))
            for c in range(num_classes):
                if c not in chosen and len(by_class[c]):
                    chosen[c] = int(by_class[c][torch.randint(len(by_class[c]), (1,), generator=pick_gen)])
            classes = sorted(chosen)
            yield step, torch.tensor([chosen[c] for c in classes]), torch.tensor(classes)
            step += 1


def _die_with_parent() -> None:
    """A t-SNE process ends when the process that trains does (Linux): a SIGKILLed sweep leaves none behind.

    Spawned processes otherwise outlive their parent, and multiprocessing's resource tracker with them.
    """
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _with_points(
    plan: Iterator[tuple[int, torch.Tensor, torch.Tensor]],
    flat: torch.Tensor,
    inputs: str,
    method_seed: int,
    workers: int,
    timing: dict[str, float],
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(step, classes, 2-D points) for every planned step; adds t-SNE compute and wait time to `timing`.

    With workers, t-SNE of the next 2*workers steps runs in spawned processes (not forked: torch's
    and scikit-learn's OpenMP runtimes are not fork-safe) while the current step trains.
    """
    if inputs == "random":
        points_gen = torch.Generator().manual_seed(_sub_seed(method_seed, 1))
        for step, _, classes in plan:
            yield step, classes, random_2d(len(classes), points_gen)
        return
    if workers <= 0:
        for step, indices, classes in plan:
            began = time.perf_counter()
            points = tsne_2d(flat[indices], _sub_seed(method_seed, 2, step))
            elapsed = time.perf_counter() - began
            timing["tsne"] += elapsed
            timing["wait"] += elapsed
            yield step, classes, points
        return
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_die_with_parent)
    pending: deque[tuple[int, torch.Tensor, Future]] = deque()

    def submit(item: tuple[int, torch.Tensor, torch.Tensor] | None) -> None:
        if item is not None:
            step, indices, classes = item
            pending.append((step, classes, pool.submit(_timed_tsne, flat[indices].cpu().numpy(), _sub_seed(method_seed, 2, step))))

    try:
        for _ in range(2 * workers):
            submit(next(plan, None))
        while pending:
            step, classes, future = pending.popleft()
            submit(next(plan, None))
            began = time.perf_counter()
            embedding, seconds = future.result()
            timing["wait"] += time.perf_counter() - began
            timing["tsne"] += seconds
            yield step, classes, torch.from_numpy(embedding)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def pretrain(
    model: nn.Module,
    supwalsh: SupWalsh,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 200,
    lr: float = 3e-5,
    seed: int,
    inputs: Literal["tsne", "random"] = "tsne",
    keep: Literal["final", "best"] = "final",
    device: str | torch.device | None = None,
    tsne_workers: int = 0,
    max_steps: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Pretrain `model` through `supwalsh` in place; returns statistics of the run.

    Per step: a shuffled batch of `batch_size` training indices, one image per class from it, their
    2-D points (t-SNE or `random_2d`), Sup-Walsh's synthetic images, the model's cross-entropy against
    the class ids, one Adam step over Sup-Walsh and model parameters. `keep="best"` restores, at the
    end, the weights that produced the lowest single-batch loss (the reference's saved snapshot: the
    weights before that step's update). `tsne_workers > 0` computes upcoming batches' t-SNE in that
    many spawned processes while the model trains; the result is identical (scripts need an
    `if __name__ == "__main__":` guard, as for any spawned process). `max_steps` caps the run (tests,
    benchmarks). The caller discards `supwalsh` afterwards.
    """
    if inputs not in ("tsne", "random"):
        raise ValueError(f"inputs must be 'tsne' or 'random', got {inputs!r}")
    if keep not in ("final", "best"):
        raise ValueError(f"keep must be 'final' or 'best', got {keep!r}")
    if len(x_train) != len(y_train) or len(y_train) == 0:
        raise ValueError(f"need as many labels as images (got {len(x_train)} images, {len(y_train)} labels)")
    if int(y_train.min()) < 0 or int(y_train.max()) >= supwalsh.num_classes:
        raise ValueError(f"labels must lie in 0..{supwalsh.num_classes - 1}, the classes Sup-Walsh has codes for")
    device = _device_of(model, device)
    model.to(device)
    supwalsh.to(device)
    was_training = model.training
    model.train()
    supwalsh.train()
    optimizer = torch.optim.Adam([*supwalsh.parameters(), *model.parameters()], lr=lr)
    method_seed = derive_seed(seed, "method")
    plan = _plan(y_train.detach().cpu().long(), supwalsh.num_classes, epochs, batch_size, seed, max_steps)
    flat = x_train.detach().reshape(len(x_train), -1)
    timing = {"tsne": 0.0, "wait": 0.0}
    snapshot = _Snapshot([model, supwalsh]) if keep == "best" else None
    losses: list[float] = []
    best_loss, best_step = math.inf, -1
    start = time.perf_counter()
    with (
        _forked_rng(device, _sub_seed(method_seed, 4)),
        contextlib.closing(_with_points(plan, flat, inputs, method_seed, tsne_workers, timing)) as steps,
    ):
        for step, classes, points in steps:
            targets = classes.to(device)
            loss = F.cross_entropy(model(supwalsh(points.to(device), targets)), targets)
            value = loss.item()
            if value < best_loss:
                if snapshot is not None:
                    snapshot.take()  # before the update: these weights produced this loss
                best_loss, best_step = value, step
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(value)
            if on_step is not None:
                on_step(step, value)
    seconds = time.perf_counter() - start
    if snapshot is not None:
        snapshot.restore()
    model.train(was_training)
    return {
        "steps": len(losses),
        "epochs": epochs,
        "inputs": inputs,
        "kept": keep,
        "seconds": seconds,
        "tsne_seconds": timing["tsne"],
        "tsne_wait_seconds": timing["wait"],
        "tsne_share": timing["wait"] / seconds if seconds > 0 else 0.0,
        "batches_per_s": len(losses) / seconds if seconds > 0 else 0.0,
        "final_loss": losses[-1] if losses else math.nan,
        "best_loss": best_loss if losses else math.nan,
        "best_step": best_step,
        "losses": losses,
    }


def compute_matched_control(
    model: nn.Module,
    steps: int,
    *,
    in_shape: tuple[int, int, int],
    num_classes: int = 10,
    lr: float = 3e-5,
    seed: int,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """The same number of extra Adam steps as a Sup-Walsh run, on uniform-noise images without Sup-Walsh.

    Each step feeds one U[0,1) noise image per class (the data's range) labelled 0..K-1, the batch
    shape of Sup-Walsh pretraining. If Sup-Walsh's gain is only "more optimizer steps from a
    perturbed start", this arm gets it too.
    """
    device = _device_of(model, device)
    model.to(device)
    was_training = model.training
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    noise_gen = torch.Generator().manual_seed(_sub_seed(derive_seed(seed, "method"), 3))
    targets = torch.arange(num_classes, device=device)
    losses: list[float] = []
    start = time.perf_counter()
    with _forked_rng(device, _sub_seed(derive_seed(seed, "method"), 4)):
        for _ in range(steps):
            images = torch.rand(num_classes, *in_shape, generator=noise_gen).to(device)
            loss = F.cross_entropy(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    seconds = time.perf_counter() - start
    model.train(was_training)
    return {
        "steps": steps,
        "seconds": seconds,
        "batches_per_s": steps / seconds if seconds > 0 else 0.0,
        "final_loss": losses[-1] if losses else math.nan,
        "losses": losses,
    }


__all__ = [
    "RANDOM_2D_SCALE",
    "SupWalsh",
    "compute_matched_control",
    "default_perplexity",
    "pretrain",
    "random_2d",
    "select_one_per_class",
    "tsne_2d",
]
