"""Reader for CIFAR-10's standard 'python version' pickle batches, without trusting the pickle.

A pickle can name any importable callable and have it called while loading (`os.system`, `exec`,
...), so `pickle.load` on a downloaded file runs whatever the file says. A genuine CIFAR-10 batch
only needs numpy's array-reconstruction helpers plus dicts, lists, bytes, str and int; the
unpickler below resolves exactly those globals and refuses every other one before it is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from seedbench.errors import DataError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
CHANNELS, SIDE = 3, 32
ROW = CHANNELS * SIDE * SIDE

# The globals a CIFAR-10 batch pickle references: numpy arrays and dtypes (the official files were
# written by Python 2 with numpy.core; numpy 2 writes numpy._core; protocol 5 uses _frombuffer), and
# what Python 3 protocols 0-2 use for bytes (_codecs.encode). Plain containers are pickle opcodes.
_NUMPY_ARRAY_HELPERS = {"_reconstruct": "multiarray", "_frombuffer": "numeric"}
ALLOWED_GLOBALS = frozenset(
    {
        *((f"{package}.{module}", name) for name, module in _NUMPY_ARRAY_HELPERS.items() for package in ("numpy.core", "numpy._core")),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        *(("builtins", name) for name in ("dict", "list", "tuple", "str", "bytes", "bytearray", "int", "set", "frozenset")),
        *(("__builtin__", name) for name in ("dict", "list", "tuple", "str", "bytes", "bytearray", "int", "set", "frozenset")),
    }
)


class _BatchUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS; anything else is a DataError before it can be called."""

    def __init__(self, file: io.BufferedIOBase, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's own signature
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(
                f"{self.path}: refused to load: the pickle asks for {module}.{name}, which a CIFAR-10 batch never "
                "holds (only numpy arrays, lists and dicts); it is not a genuine batch and may be malicious - "
                "delete it and re-download cifar-10-python.tar.gz"
            )
        if module.startswith("numpy.core."):  # numpy 2 moved numpy.core to numpy._core (the old name warns)
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _load_pickle(path: Path) -> object:
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a CIFAR-10 batch file; remove it and extract the batch there")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path}: missing CIFAR-10 batch file; the directory needs data_batch_1..5 and test_batch (extract cifar-10-python.tar.gz there)"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({' '.join(str(exc.strerror or exc).split())}); check its permissions") from None
    try:
        return _BatchUnpickler(io.BytesIO(data), path).load()
    except DataError:
        raise
    except EOFError:
        raise DataError(f"{path}: not a readable CIFAR-10 pickle batch (truncated: the pickle ends early); re-download it") from None
    except Exception as exc:  # pickle raises many unrelated types on corrupt input
        raise DataError(f"{path}: not a readable CIFAR-10 pickle batch ({type(exc).__name__}); re-download it") from None


def _labels(path: Path, labels: object, classes: int | None) -> np.ndarray:
    """The batch's labels as int64, refusing floats, booleans, text and values outside 0..classes-1."""
    if isinstance(labels, np.ndarray):
        array = labels
    elif isinstance(labels, (list, tuple)):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in labels):
            bad = next(v for v in labels if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)))
            raise DataError(f"{path}: label {bad!r} is a {type(bad).__name__}; CIFAR-10 labels are integers 0..9, re-download the file")
        array = np.asarray(labels, dtype=np.int64)
    else:
        raise DataError(f"{path}: 'labels' is a {type(labels).__name__}, expected a list of integers; re-download the file")
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise DataError(
            f"{path}: labels are a {array.dtype} array of shape {array.shape}; CIFAR-10 labels are a list of integers, re-download the file"
        )
    array = array.astype(np.int64)
    if classes is not None and len(array):
        bad = (array < 0) | (array >= classes)
        if bad.any():
            first = int(np.argmax(bad))
            raise DataError(
                f"{path}: label {int(array[first])} at position {first} is outside 0..{classes - 1}; "
                "the file is corrupt or not CIFAR-10, re-download it"
            )
    return array


def read_batch(path: Path, classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickle batch as (N, 3, 32, 32) uint8 images and (N,) int64 labels.

    With `classes`, a label outside 0..classes-1 is refused here, naming this file.
    """
    batch = _load_pickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (expected a dict, found {type(batch).__name__}); re-download it")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{path}: CIFAR-10 batch lacks 'data' or 'labels'; re-download it")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = f"a {data.dtype} array" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise DataError(f"{path}: pixel data is {kind}, expected a uint8 array; the file is not a CIFAR-10 batch, re-download it")
    if data.ndim != 2 or data.shape[1] != ROW:
        raise DataError(f"{path}: image rows have {data.shape[-1] if data.ndim else 0} values, expected {ROW} (3x32x32); truncated or wrong file")
    labels = _labels(path, labels, classes)
    if len(data) != len(labels):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels; the file is inconsistent, re-download it")
    return data.reshape(-1, CHANNELS, SIDE, SIDE), labels


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a batch in the standard format (used by tests and tools)."""
    payload = {b"data": np.asarray(images, dtype=np.uint8).reshape(len(images), -1), b"labels": list(map(int, labels))}
    with open(path, "wb") as fh:
        pickle.dump(payload, fh)


def read_cifar10(directory: Path, classes: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The five training batches concatenated, and the test batch, each file opened once."""
    parts = [read_batch(directory / name, classes) for name in TRAIN_BATCHES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_batch(directory / TEST_BATCH, classes)
    return x_train, y_train, x_test, y_test
