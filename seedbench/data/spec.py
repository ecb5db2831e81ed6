"""What a dataset is: its spec (classes, image shape, how to find and read its files) and its raw splits.

Kept apart from the registry so that the built-in datasets (seedbench.data.builtin) and a plugin's
are declared against these types alone; seedbench.data.registry registers and checks them. numpy only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from seedbench.errors import ConfigError

BUILTIN_AUGMENTATIONS = frozenset({"mnist", "cifar10"})
# The fixed permutation that carves validation out of train: a property of the dataset, not of a run.
SPLIT_SEED = 20_190_512

DataDir = str | os.PathLike | None


class RawSplits(NamedTuple):
    """What a spec's `load` returns: the dataset's own train and test files, as numpy arrays.

    Images are uint8, (N, H, W) or (N, C, H, W); labels are integers in 0..classes-1. `sources`
    names where each array came from ("train_images", "train_labels", "test_images",
    "test_labels" -> a path), so a fault found later still names the file.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sources: Mapping[str, str] = {}


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset, as the registry knows it.

    name: what configs and sweeps call it.
    classes: K; labels must lie in 0..K-1, and models get K outputs (even if a split lacks a class).
    shape: (C, H, W) of one stored sample (a table of 13 features is (1, 1, 13)); files with another
        shape are refused at plan time, and every model of a grid is checked against it
        (`input_shape`) before anything runs.
    load: `load(location) -> RawSplits`, given what `locate` returned (numpy only, no torch).
    locate: `locate(data_dir) -> Path | None`: the folder or file holding the dataset, searched under
        data_dir (--data-dir) and $SEEDBENCH_DATA (see `data_dirs`); None when it is not installed.
        Leave it out for a dataset the loader generates or finds by itself.
    val_size: training images held out for validation when a config does not say.
    augmentation: "mnist" (pad to 34, crop 28, brightness +-0.5), "cifar10" (pad 40, crop 32,
        flip, per-image standardisation, also at evaluation), a callable
        `(batch: Tensor, generator: torch.Generator) -> Tensor` (train only), or None: the dataset
        has none, and `augment=true` is refused when the sweep is planned.
    how_to_get: one line telling a user how to install it.
    """

    name: str
    classes: int
    shape: tuple[int, int, int]
    load: Callable[[Path], RawSplits]
    val_size: int
    locate: Callable[[DataDir], Path | None] | None = None
    augmentation: str | Callable[..., Any] | None = None
    how_to_get: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r}"
        if self.locate is None:  # a dataset its loader generates or finds itself: always "installed"
            name = self.name
            object.__setattr__(self, "locate", lambda data_dir: Path(f"<{name}>"))
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ConfigError(f"dataset name {self.name!r} must be a non-empty string without surrounding spaces; fix register_dataset")
        if not isinstance(self.classes, int) or isinstance(self.classes, bool) or self.classes < 2:
            raise ConfigError(f"{where}: classes={self.classes!r} must be an integer >= 2; fix its DatasetSpec")
        shape = tuple(self.shape) if isinstance(self.shape, (tuple, list)) else None
        if shape is None or len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ConfigError(f"{where}: shape={self.shape!r} must be (C, H, W) with positive integers; fix its DatasetSpec")
        object.__setattr__(self, "shape", shape)
        if not callable(self.load) or not callable(self.locate):
            raise ConfigError(f"{where}: load and locate must be callables; fix its DatasetSpec")
        if not isinstance(self.val_size, int) or isinstance(self.val_size, bool) or self.val_size < 0:
            raise ConfigError(f"{where}: val_size={self.val_size!r} must be an integer >= 0; fix its DatasetSpec")
        aug = self.augmentation
        if not (aug is None or callable(aug) or (isinstance(aug, str) and aug in BUILTIN_AUGMENTATIONS)):
            raise ConfigError(
                f"{where}: augmentation={aug!r} must be one of {', '.join(sorted(BUILTIN_AUGMENTATIONS))}, a callable or None; fix its DatasetSpec"
            )
        if not isinstance(self.how_to_get, str) or "\n" in self.how_to_get:
            raise ConfigError(f"{where}: how_to_get must be one line of text; fix its DatasetSpec")

    def input_shape(self, image_size: int | None = None, grayscale: bool = False) -> tuple[int, int, int]:
        """(C, H, W) of what a model is fed from this dataset: its declared shape after a cell's
        `image_size` (a square resize) and `grayscale` (3 channels to 1), exactly as
        seedbench.data.transforms converts the images. Known without opening a file, so the driver can
        check a model against it before anything is loaded."""
        c, h, w = self.shape
        if grayscale and c == 3:
            c = 1
        if image_size is not None:
            h = w = int(image_size)
        return c, h, w

    @property
    def augmentation_name(self) -> str | None:
        aug = self.augmentation
        return aug if isinstance(aug, str) or aug is None else getattr(aug, "__qualname__", repr(aug))


@dataclass(frozen=True)
class DatasetInfo:
    """What a plan needs to know about a dataset, found by `check_dataset` without torch."""

    name: str
    location: str
    in_shape: tuple[int, int, int]
    num_classes: int
    n_train: int  # after the validation split and limit_train
    n_val: int
    n_test: int
    augmentation: str | None = None
    files: tuple[str, ...] = field(default_factory=tuple)


def data_dirs(data_dir: DataDir = None) -> list[Path]:
    """Directories searched, in order: --data-dir, then $SEEDBENCH_DATA."""
    dirs = []
    for candidate in (data_dir, os.environ.get("SEEDBENCH_DATA")):
        if candidate:
            dirs.append(Path(candidate).expanduser())
    return dirs
