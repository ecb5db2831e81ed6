"""Datasets held whole in memory as tensors, with the study's train/validation/test protocol.

Images are float32 in [0, 1], shaped (N, C, H, W); labels int64. The validation split is carved out of
the training files with a fixed permutation (independent of any run seed), so every run of a study sees
the same validation set and the test split is touched only for the final evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seedbench.data.cifar import read_cifar10
from seedbench.data.idx import read_idx
from seedbench.errors import DataError

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Sub-directory names tried under a data directory, besides the directory itself.
ALIASES = {
    "mnist": ["mnist", "MNIST"],
    "fmnist": ["fmnist", "fashion-mnist", "fashion_mnist", "FashionMNIST"],
    "cifar10": ["cifar10", "cifar-10-batches-py", "cifar-10"],
}
DATASETS = ("digits", "mnist", "fmnist", "cifar10")
# Held-out validation images per dataset (METHODS.md section 1); digits is small, so it holds out less.
DEFAULT_VAL_SIZE = {"digits": 300, "mnist": 10_000, "fmnist": 10_000, "cifar10": 10_000}
HOW_TO_GET = {
    "mnist": "put train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) "
    "and t10k-labels-idx1-ubyte(.gz) in DIR/mnist and pass --data-dir DIR (or set SEEDBENCH_DATA=DIR)",
    "fmnist": "run `apt-get install dataset-fashion-mnist` (Debian), or put the four Fashion-MNIST IDX files "
    "in DIR/fmnist and pass --data-dir DIR (or set SEEDBENCH_DATA=DIR)",
    "cifar10": "extract cifar-10-python.tar.gz (data_batch_1..5, test_batch) into DIR/cifar10 and pass "
    "--data-dir DIR (or set SEEDBENCH_DATA=DIR)",
    "digits": "ships with scikit-learn; nothing to do",
}
# The fixed permutation that carves validation out of train: a property of the dataset, not of a run.
_SPLIT_SEED = 20_190_512


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

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> "Dataset":
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Dataset(name=self.name, num_classes=self.num_classes, source=self.source, **moved)


def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched, in order: --data-dir, then $SEEDBENCH_DATA."""
    dirs = []
    for candidate in (data_dir, os.environ.get("SEEDBENCH_DATA")):
        if candidate:
            dirs.append(Path(candidate).expanduser())
    return dirs


def _has_idx(directory: Path) -> bool:
    return all(_idx_path(directory, stem) is not None for stem in IDX_FILES.values())


def _idx_path(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The directory holding dataset `name`, or None when it is not present anywhere we look."""
    if name == "digits":
        return Path("sklearn")
    if name not in ALIASES:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    candidates: list[Path] = []
    for base in data_dirs(data_dir):
        candidates += [base / alias for alias in ALIASES[name]] + [base]
    if name == "fmnist":
        candidates.append(DEBIAN_FMNIST)
    for directory in candidates:
        if name == "cifar10" and (directory / "data_batch_1").is_file():
            return directory
        if name != "cifar10" and _has_idx(directory):
            return directory
    return None


def _split(x: np.ndarray, y: np.ndarray, val_size: int, name: str) -> tuple:
    if not 0 <= val_size < len(x):
        raise DataError(f"{name}: validation size {val_size} must be between 0 and {len(x) - 1}; lower val_size")
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
    val, train = order[:val_size], order[val_size:]
    return x[train], y[train], x[val], y[val]


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(images, dtype=np.uint8)).float().div_(255.0)
    return tensor.unsqueeze(1) if tensor.dim() == 3 else tensor


def _load_idx(name: str, directory: Path) -> tuple[np.ndarray, ...]:
    paths = {key: _idx_path(directory, stem) for key, stem in IDX_FILES.items()}
    arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in paths.items()}  # type: ignore[arg-type]
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{paths[f'{split}_images']}: {n_img} images but {paths[f'{split}_labels']} has {n_lab} labels; "
                "the pair does not match, re-download them"
            )
    return arrays["train_images"], arrays["train_labels"].astype(np.int64), arrays["test_images"], arrays["test_labels"].astype(np.int64)


def _load_digits() -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits, resized to 28x28 so MNIST-shaped models keep their parameter counts."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    resized = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False)
    pixels = (resized.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1).numpy()
    labels = bunch.target.astype(np.int64)
    # a fixed 20% test split, the remainder is "train" from which validation is held out
    order = np.random.default_rng(_SPLIT_SEED + 1).permutation(len(labels))
    n_test = len(labels) // 5
    test, train = order[:n_test], order[n_test:]
    return pixels[train], labels[train], pixels[test], labels[test]


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    val_size: int | None = None,
    limit_train: int | None = None,
) -> Dataset:
    """Load a dataset whole into memory with its validation split held out of train.

    `limit_train` keeps only the first N training images (after the split) for quick studies and tests.
    """
    directory = locate(name, data_dir)
    if directory is None:
        looked = ", ".join(str(d) for d in data_dirs(data_dir)) or "no --data-dir or SEEDBENCH_DATA given"
        raise DataError(f"dataset {name!r} not found (looked in: {looked}); to get it: {HOW_TO_GET[name]}")
    if name == "digits":
        x_tr, y_tr, x_te, y_te = _load_digits()
    elif name == "cifar10":
        x_tr, y_tr, x_te, y_te = read_cifar10(directory)
    else:
        x_tr, y_tr, x_te, y_te = _load_idx(name, directory)
    val = DEFAULT_VAL_SIZE[name] if val_size is None else val_size
    x_tr, y_tr, x_val, y_val = _split(x_tr, y_tr, val, name)
    if limit_train is not None:
        x_tr, y_tr = x_tr[:limit_train], y_tr[:limit_train]
    num_classes = int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    return Dataset(
        name=name,
        x_train=_to_tensor(x_tr),
        y_train=torch.from_numpy(y_tr),
        x_val=_to_tensor(x_val),
        y_val=torch.from_numpy(y_val),
        x_test=_to_tensor(x_te),
        y_test=torch.from_numpy(y_te),
        num_classes=num_classes,
        source=str(directory),
    )


def availability(data_dir: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """One row per dataset: where it was found, or how to get it."""
    rows = []
    for name in DATASETS:
        where = locate(name, data_dir)
        rows.append(
            {
                "dataset": name,
                "status": "available" if where is not None else "missing",
                "location": "scikit-learn (bundled)" if name == "digits" else (str(where) if where else "-"),
                "how_to_get": "" if where is not None else HOW_TO_GET[name],
            }
        )
    return rows


def present_datasets(names: list[str], data_dir: str | os.PathLike | None = None) -> list[str]:
    """The datasets of `names` that are installed; each missing one is reported with how to get it."""
    import sys

    present = []
    for name in names:
        if locate(name, data_dir) is None:
            print(f"skipping {name}: not installed; to get it: {HOW_TO_GET[name]}", file=sys.stderr)
        else:
            present.append(name)
    return present
