"""Batch-level augmentation as the random-bases study describes it (METHODS.md section 1).

It runs on whole batches with tensor ops (no per-sample Python) and draws from its own generator, so
augmentation randomness is a separate stream from weights and data order.
"""

from __future__ import annotations

import torch


def random_crop(batch: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad` on each side, then crop back to the original size at a random offset per image."""
    n, _, h, w = batch.shape
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad))
    off_y = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=batch.device)
    off_x = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=batch.device)
    rows = (off_y[:, None] + torch.arange(h, device=batch.device)[None, :])[:, None, :, None]
    cols = (off_x[:, None] + torch.arange(w, device=batch.device)[None, :])[:, None, None, :]
    index = torch.arange(n, device=batch.device)[:, None, None, None]
    channels = torch.arange(batch.shape[1], device=batch.device)[None, :, None, None]
    return padded[index, channels, rows, cols]


def random_brightness(batch: torch.Tensor, max_delta: float, generator: torch.Generator) -> torch.Tensor:
    delta = (torch.rand(batch.shape[0], 1, 1, 1, generator=generator, device=batch.device) * 2 - 1) * max_delta
    return batch + delta


def random_hflip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(batch.shape[0], generator=generator, device=batch.device) < 0.5
    return torch.where(flip[:, None, None, None], batch.flip(-1), batch)


def per_image_standardize(batch: torch.Tensor) -> torch.Tensor:
    """(x - mean) / max(std, 1/sqrt(N)) per image, as tf.image.per_image_standardization does."""
    flat = batch.flatten(1)
    mean = flat.mean(1, keepdim=True)
    floor = torch.tensor(1.0 / flat.shape[1] ** 0.5, device=batch.device, dtype=batch.dtype)
    std = flat.std(1, unbiased=False, keepdim=True).maximum(floor)
    return ((flat - mean) / std).view_as(batch)


class Augmenter:
    """The study's train-time augmentation for one dataset; `eval_transform` is what evaluation sees."""

    def __init__(self, dataset: str, generator: torch.Generator):
        self.dataset = dataset
        self.generator = generator

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.dataset == "cifar10":
            batch = random_hflip(random_crop(batch, 4, self.generator), self.generator)
            return per_image_standardize(batch)
        # MNIST-like 28x28: pad to 34, crop 28, brightness +-0.5
        return random_brightness(random_crop(batch, 3, self.generator), 0.5, self.generator)

    def eval_transform(self, batch: torch.Tensor) -> torch.Tensor:
        return per_image_standardize(batch) if self.dataset == "cifar10" else batch
