"""Datasets held whole in memory as tensors, with the study's train/validation/test protocol.

Which datasets exist, where their files are and how they are read is the registry's business
(seedbench.data.registry, numpy only); this module turns what a spec's loader returns into tensors.

Images are float32 in [0, 1], shaped (N, C, H, W); labels int64. The validation split is carved out of
the training files with a fixed permutation (independent of any run seed), so every run of a study sees
the same validation set and the test split is touched only for the final evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seedbench.data.registry import (
    SPLIT_SEED,
    DatasetSpec,
    data_dirs,
    dataset_names,
    get_dataset_spec,
    locate_or_raise,
    read_splits,
    resolve_sizes,
)
from seedbench.errors import DataError

__all__ = ["Dataset", "availability", "data_dirs", "load_dataset", "locate", "present_datasets"]

_SPLIT_SEED = SPLIT_SEED


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    source: str
    augment_options: dict = field(default_factory=dict)  # the cell's augment_clip / augment_pad (seedbench.data.augment)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> Dataset:
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Dataset(name=self.name, num_classes=self.num_classes, source=self.source, augment_options=dict(self.augment_options), **moved)


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """Where dataset `name` is installed, or None; an unknown name is a ConfigError with a suggestion."""
    return get_dataset_spec(name).locate(data_dir)


def _split(x: np.ndarray, y: np.ndarray, val_size: int, name: str, split: str = "fixed", split_seed: int | None = None) -> tuple:
    """fixed: the images one fixed permutation picks (the same for every run); block: the reference's
    contiguous block of `val_size` images at an offset drawn from `split_seed` (the run's data seed)."""
    if not 0 <= val_size < len(x):
        raise DataError(f"{name}: validation size {val_size} must be between 0 and {len(x) - 1}; lower val_size")
    if split == "block":
        if split_seed is None:
            raise DataError(f"{name}: val_split=block needs the run's data seed")
        offset = int(np.random.default_rng(split_seed).integers(0, len(x) - val_size + 1))
        val = np.arange(offset, offset + val_size)
        train = np.concatenate([np.arange(offset), np.arange(offset + val_size, len(x))])
    elif split == "fixed":
        order = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
        val, train = order[:val_size], order[val_size:]
    else:
        raise DataError(f"{name}: unknown val_split {split!r}; use fixed or block")
    return x[train], y[train], x[val], y[val]


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255.0)
    return tensor.unsqueeze(1) if tensor.dim() == 3 else tensor


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    val_size: int | None = None,
    limit_train: int | None = None,
    split: str = "fixed",
    split_seed: int | None = None,
) -> Dataset:
    """Load a dataset whole into memory with its validation split held out of train.

    `limit_train` keeps only the first N training images (after the split) for quick studies and tests.
    The files go through the same checks as `check_dataset` (shape, label range, counts), and
    `num_classes` is the spec's K, not the largest label seen: a small subset missing the last class
    still gets a model with K outputs.
    """
    spec = get_dataset_spec(name)
    directory = locate_or_raise(spec, data_dir)
    raw = read_splits(spec, directory)
    _, val = resolve_sizes(spec, len(raw.x_train), val_size, limit_train)
    x_tr, y_tr, x_val, y_val = _split(raw.x_train, raw.y_train, val, name, split, split_seed)
    if limit_train is not None:
        x_tr, y_tr = x_tr[:limit_train], y_tr[:limit_train]
    return Dataset(
        name=name,
        x_train=_to_tensor(x_tr),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_val=_to_tensor(x_val),
        y_val=torch.from_numpy(np.ascontiguousarray(y_val)),
        x_test=_to_tensor(raw.x_test),
        y_test=torch.from_numpy(np.ascontiguousarray(raw.y_test)),
        num_classes=spec.classes,
        source=str(directory),
    )


def availability(data_dir: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """One row per registered dataset: its declared shape and classes, where it was found, or how to get it
    (files are not opened)."""
    rows = []
    for name in dataset_names():
        spec = get_dataset_spec(name)
        where = spec.locate(data_dir)
        rows.append(
            {
                "dataset": name,
                "status": "available" if where is not None else "missing",
                "location": str(where) if where is not None else "-",
                "how_to_get": "" if where is not None else spec.how_to_get,
                "shape": "x".join(map(str, spec.shape)),
                "classes": spec.classes,
                "description": spec.description,
            }
        )
    return rows


def present_datasets(names: list[str], data_dir: str | os.PathLike | None = None) -> list[str]:
    """The datasets of `names` that are installed; each missing one is reported with how to get it."""
    import sys

    present = []
    for name in names:
        spec: DatasetSpec = get_dataset_spec(name)
        if spec.locate(data_dir) is None:
            print(f"skipping {name}: not installed; to get it: {spec.how_to_get}", file=sys.stderr)
        else:
            present.append(name)
    return present
