"""Independent random streams derived from one run seed.

Weights, data order, augmentation and the method's own randomness each get their own stream, so a
study can vary one of them while holding the others fixed (the 100-seed PA design varies only 'init').
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the driver derives seeds while it plans; it must not pay for torch
    import torch

STREAMS = ("init", "data", "augment", "method")


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for `stream`, statistically independent of the other streams of the same seed."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; use one of {STREAMS}")
    state = np.random.SeedSequence([int(seed), zlib.crc32(stream.encode())]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def stream_seeds(seed: int, overrides: dict[str, int | None] | None = None) -> dict[str, int]:
    """Seeds per stream: each from `overrides[stream]` when given, otherwise from the run seed."""
    overrides = overrides or {}
    return {s: derive_seed(overrides.get(s) if overrides.get(s) is not None else seed, s) for s in STREAMS}


def child_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one use inside a stream (a method's `initialize` hook, its own generator), so a
    hook never replays the draws the stream's main consumer (the initializer, the optimizer) makes."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode()), 1]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    import torch

    return torch.Generator(device=device).manual_seed(seed)


def seed_torch(seed: int) -> None:
    """torch.manual_seed for the devices this process can have, without paying for the others.

    torch.manual_seed also queues a seed for CUDA, XPU and MTIA when they are not initialised, and
    queueing records the caller's stack as text: ~3.5 ms per call on a CPU-only machine, for seeds
    that are never used (a device that is not available never initialises). Every cell seeds twice, so
    a short cell paid ~7 ms for nothing. Available devices are seeded exactly as torch.manual_seed
    would; the CPU generator always is.
    """
    import torch

    seed = int(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if torch.backends.mps.is_available():
        torch.mps.manual_seed(seed)
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        xpu.manual_seed_all(seed)
    torch.default_generator.manual_seed(seed)
