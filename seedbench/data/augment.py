"""Batch-level augmentation as the random-bases study describes it (docs/methods.md, "Networks").

It runs on whole batches with tensor ops (no per-sample Python) and draws from its own generator, so
augmentation randomness is a separate stream from weights and data order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from seedbench.data.registry import DatasetSpec, get_dataset_spec
from seedbench.errors import ConfigError

PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}  # config value -> torch's pad mode


def random_crop(batch: torch.Tensor, pad: int, generator: torch.Generator, mode: str = "zeros") -> torch.Tensor:
    """Pad by `pad` on each side (zeros, or `mode`: reflect / replicate), then crop back to the original
    size at a random offset per image."""
    n, _, h, w = batch.shape
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad), mode=PAD_MODES[mode])
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


def mnist_augment(batch: torch.Tensor, generator: torch.Generator, clip: bool = False, pad: str = "zeros") -> torch.Tensor:
    """MNIST-like 28x28: zero-pad to 34, crop back to 28 at a random offset, brightness +-0.5.

    `clip`: clamp the result to [0, 1] (the draws are the same either way); `pad`: the crop's padding."""
    out = random_brightness(random_crop(batch, 3, generator, pad), 0.5, generator)
    return out.clamp_(0.0, 1.0) if clip else out


def cifar10_augment(batch: torch.Tensor, generator: torch.Generator, clip: bool = False, pad: str = "zeros") -> torch.Tensor:
    """CIFAR-10: zero-pad to 40, crop 32, random horizontal flip, then per-image standardisation
    (`clip` clamps before the standardisation)."""
    out = random_hflip(random_crop(batch, 4, generator, pad), generator)
    return per_image_standardize(out.clamp_(0.0, 1.0) if clip else out)


def _identity(batch: torch.Tensor) -> torch.Tensor:
    return batch


# Augmentations a DatasetSpec can name: (train-time transform, what evaluation sees). The names must
# match seedbench.data.registry.BUILTIN_AUGMENTATIONS (tests keep them equal).
AUGMENTATIONS: dict[str, tuple[Callable[[torch.Tensor, torch.Generator], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "mnist": (mnist_augment, _identity),
    "cifar10": (cifar10_augment, per_image_standardize),
}


# The config keys that change a built-in augmentation -> its keyword and the default (today's behaviour).
OPTION_DEFAULTS: dict[str, Any] = {"clip": False, "pad": "zeros"}


def augment_options(cfg: Any) -> dict[str, Any]:
    """A cell's augmentation options from its config (`augment_clip`, `augment_pad`)."""
    return {"clip": bool(getattr(cfg, "augment_clip", False)), "pad": str(getattr(cfg, "augment_pad", "zeros"))}


class Augmenter:
    """The train-time augmentation a dataset's spec declares; `eval_transform` is what evaluation sees.

    The augmentation comes from the registered DatasetSpec, never from the dataset's name, so a new
    dataset does not silently get MNIST's. A spec whose augmentation is a callable gets it at train
    time and unchanged images at evaluation; a spec without one cannot be augmented (ConfigError,
    which the sweep planner raises before any cell runs).
    """

    def __init__(self, dataset: str | DatasetSpec | Any, generator: torch.Generator, options: dict[str, Any] | None = None):
        """`dataset`: a name, a spec, or a loaded Dataset, whose `augment_options` (the cell's `augment_clip`
        and `augment_pad`, see `augment_options`) apply unless `options` is given."""
        if options is None:
            options = dict(getattr(dataset, "augment_options", None) or {})
        if not isinstance(dataset, str | DatasetSpec):
            dataset = dataset.name
        spec = get_dataset_spec(dataset) if isinstance(dataset, str) else dataset
        self.dataset = spec.name
        self.generator = generator
        augmentation = spec.augmentation
        if augmentation is None:
            raise ConfigError(f"dataset {spec.name!r} declares no augmentation; set augment=false or register the dataset with one")
        if isinstance(augmentation, str):
            if augmentation not in AUGMENTATIONS:
                raise ConfigError(f"dataset {spec.name!r}: unknown augmentation {augmentation!r}; choose one of {', '.join(sorted(AUGMENTATIONS))}")
            self._train, self._eval = AUGMENTATIONS[augmentation]
        else:
            if any(options.get(k, v) != v for k, v in OPTION_DEFAULTS.items()):
                raise ConfigError(f"dataset {spec.name!r}: augment_clip and augment_pad apply to the built-in augmentations only")
            self._train, self._eval = augmentation, _identity
            options = {}
        self.options = {k: v for k, v in options.items() if OPTION_DEFAULTS.get(k, v) != v}  # only what differs

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self._train(batch, self.generator, **self.options)

    def eval_transform(self, batch: torch.Tensor) -> torch.Tensor:
        return self._eval(batch)
