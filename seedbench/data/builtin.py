"""The built-in datasets, registered the way a plugin registers its own (numpy only, no torch).

digits   scikit-learn's bundled 8x8 digits, resized to 28x28 (read from its CSV, no sklearn import)
mnist    four IDX files (raw or .gz) in DIR/mnist
fmnist   the same format in DIR/fmnist, or Debian's dataset-fashion-mnist package
cifar10  the 'python version' pickle batches in DIR/cifar10
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from seedbench.data.cifar import TEST_BATCH, TRAIN_BATCHES, read_cifar10
from seedbench.data.idx import read_idx
from seedbench.data.spec import SPLIT_SEED, DataDir, DatasetSpec, RawSplits, data_dirs
from seedbench.errors import DataError

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# The fixed permutation behind digits' test split: a property of the dataset, not of a run.
DIGITS_SPLIT_SEED = SPLIT_SEED + 1
DIGITS_SIDE = 28
_DATA_DIR_HINT = "and pass --data-dir DIR (or set SEEDBENCH_DATA=DIR)"


# -- IDX (mnist, fmnist) --------------------------------------------------------------------------------


def _idx_path(directory: Path, stem: str) -> Path | None:
    """The raw or gzip file of `stem` (a directory of that name counts: reading it says what is wrong)."""
    for name in (stem, stem + ".gz"):
        if (directory / name).exists():
            return directory / name
    return None


def idx_locator(aliases: Sequence[str], extra: Sequence[Path] = ()) -> Callable[[DataDir], Path | None]:
    """A `locate` for IDX datasets: the first of DIR/<alias>, DIR, then `extra` holding any of the files.

    Any one file is enough to claim the folder, so a folder missing a file is reported by name when
    it is read, rather than as 'not found'.
    """

    def locate(data_dir: DataDir = None) -> Path | None:
        candidates = [path for base in data_dirs(data_dir) for path in (*(base / alias for alias in aliases), base)]
        candidates += extra
        for directory in candidates:
            if directory.is_dir() and any(_idx_path(directory, stem) for stem in IDX_FILES.values()):
                return directory
        return None

    return locate


def load_idx(directory: Path) -> RawSplits:
    """The four IDX files of `directory`, each opened once."""
    paths: dict[str, Path] = {}
    for key, stem in IDX_FILES.items():
        path = _idx_path(directory, stem)
        if path is None:
            raise DataError(f"{directory / stem}(.gz): missing; the folder needs {', '.join(IDX_FILES.values())} (raw or .gz), re-download it")
        paths[key] = path
    arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in paths.items()}
    return RawSplits(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        {key: str(path) for key, path in paths.items()},
    )


# -- CIFAR-10 -------------------------------------------------------------------------------------------


def locate_cifar10(data_dir: DataDir = None) -> Path | None:
    for base in data_dirs(data_dir):
        for directory in (base / "cifar10", base / "cifar-10-batches-py", base / "cifar-10", base):
            if directory.is_dir() and any((directory / name).exists() for name in (*TRAIN_BATCHES, TEST_BATCH)):
                return directory
    return None


def load_cifar10(directory: Path) -> RawSplits:
    x_train, y_train, x_test, y_test = read_cifar10(directory, classes=10)
    train = f"{directory}/data_batch_1..5"
    return RawSplits(
        x_train,
        y_train,
        x_test,
        y_test,
        {"train_images": train, "train_labels": train, "test_images": str(directory / TEST_BATCH), "test_labels": str(directory / TEST_BATCH)},
    )


# -- digits (scikit-learn's bundled file) ---------------------------------------------------------------


def locate_digits(data_dir: DataDir = None) -> Path | None:
    """scikit-learn's digits.csv.gz, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _bilinear_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a bilinear resize with half-pixel centres (align_corners=False).

    The same float32 formula as torch.nn.functional.interpolate (the source coordinate in double,
    rounded to float32 once).
    """
    scale = np.float32(n_in) / np.float32(n_out)
    src = (np.float64(scale) * (np.arange(n_out) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = i0 + (i0 < n_in - 1)
    w1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0)).astype(np.float32)
    w0 = (np.float32(1.0) - w1).astype(np.float32)
    return i0, i1, w0, w1


def _fma(a: np.ndarray, b: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """a * b + acc rounded once to float32 (a fused multiply-add; the float32 product is exact in float64)."""
    return (a.astype(np.float64) * b.astype(np.float64) + acc.astype(np.float64)).astype(np.float32)


def resize_bilinear(images: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W) float32 -> (N, side, side) float32, as torch's bilinear interpolate computes it.

    torch's CPU kernel on AVX2/AVX-512 machines accumulates the four taps with fused multiply-adds
    in this order; reproducing it keeps digits' pixels exactly those earlier seedbench versions
    trained on (when they resized with torch), and makes them the same on every CPU.
    """
    r0, r1, rw0, rw1 = _bilinear_weights(images.shape[1], side)
    c0, c1, cw0, cw1 = _bilinear_weights(images.shape[2], side)
    w = {(i, j): (rw[:, None] * cw[None, :]).astype(np.float32) for i, rw in ((0, rw0), (1, rw1)) for j, cw in ((0, cw0), (1, cw1))}
    rows, cols = (r0, r1), (c0, c1)

    def tap(i: int, j: int) -> np.ndarray:
        return images[:, rows[i]][:, :, cols[j]]

    acc = (tap(0, 1) * w[0, 1]).astype(np.float32)
    for i, j in ((0, 0), (1, 0), (1, 1)):
        acc = _fma(tap(i, j), w[i, j], acc)
    return acc


def load_digits(path: Path) -> RawSplits:
    """8x8 digits (values 0..16) resized to 28x28 uint8, so MNIST-shaped models keep their sizes.

    A fixed 20% is the test split; the remainder is 'train', from which validation is held out.
    """
    try:
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot read scikit-learn's digits ({' '.join(str(exc).split())}); reinstall scikit-learn") from None
    if table.ndim != 2 or table.shape[1] != 65:
        raise DataError(f"{path}: expected 65 columns (8x8 pixels and the label), found {table.shape}; reinstall scikit-learn")
    images = (table[:, :-1].reshape(-1, 8, 8) / 16.0).astype(np.float32)
    labels = table[:, -1]
    if not np.array_equal(labels, np.round(labels)):
        raise DataError(f"{path}: non-integer labels in the last column; reinstall scikit-learn")
    labels = labels.astype(np.int64)
    resized = resize_bilinear(images, DIGITS_SIDE)
    pixels = np.round(np.clip(resized, 0.0, 1.0) * np.float32(255)).astype(np.uint8)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    n_test = len(labels) // 5
    test, train = order[:n_test], order[n_test:]
    return RawSplits(
        pixels[train],
        labels[train],
        pixels[test],
        labels[test],
        {key: str(path) for key in ("train_images", "train_labels", "test_images", "test_labels")},
    )


# -- registration ---------------------------------------------------------------------------------------

# The built-in datasets; seedbench.data.registry registers them on first use, as it registers a plugin's.
BUILTINS: list[DatasetSpec] = [
    DatasetSpec(
        name="digits",
        classes=10,
        shape=(1, DIGITS_SIDE, DIGITS_SIDE),
        load=load_digits,
        locate=locate_digits,
        val_size=300,  # digits is small (1,437 training images), so it holds out less
        augmentation="mnist",
        how_to_get="ships with scikit-learn; run `pip install scikit-learn`",
        description="scikit-learn's 1,797 8x8 digits resized to 28x28",
    ),
    DatasetSpec(
        name="mnist",
        classes=10,
        shape=(1, 28, 28),
        load=load_idx,
        locate=idx_locator(["mnist", "MNIST"]),
        val_size=10_000,
        augmentation="mnist",
        how_to_get="put train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) "
        f"and t10k-labels-idx1-ubyte(.gz) in DIR/mnist {_DATA_DIR_HINT}",
        description="MNIST handwritten digits, 28x28 grayscale",
    ),
    DatasetSpec(
        name="fmnist",
        classes=10,
        shape=(1, 28, 28),
        load=load_idx,
        locate=idx_locator(["fmnist", "fashion-mnist", "fashion_mnist", "FashionMNIST"], [DEBIAN_FMNIST]),
        val_size=10_000,
        augmentation="mnist",
        how_to_get=f"run `apt-get install dataset-fashion-mnist` (Debian), or put the four Fashion-MNIST IDX files in DIR/fmnist {_DATA_DIR_HINT}",
        description="Fashion-MNIST clothing images, 28x28 grayscale",
    ),
    DatasetSpec(
        name="cifar10",
        classes=10,
        shape=(3, 32, 32),
        load=load_cifar10,
        locate=locate_cifar10,
        val_size=10_000,
        augmentation="cifar10",
        how_to_get=f"extract cifar-10-python.tar.gz (data_batch_1..5, test_batch) into DIR/cifar10 {_DATA_DIR_HINT}",
        description="CIFAR-10 colour images, 32x32 RGB",
    ),
]
