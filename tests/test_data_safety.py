"""Faulty and hostile dataset files, written in the real formats, are refused with one line each.

Every fault must be caught by the plan-time check (`check_dataset`, numpy only) and by `load_dataset`,
naming the file, the fault and the fix; a CIFAR pickle must never get to run code.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seedbench.data import registry
from seedbench.data.cifar import ALLOWED_GLOBALS, read_batch, write_batch
from seedbench.data.idx import write_idx
from seedbench.data.registry import DatasetSpec, RawSplits, check_dataset, dataset_names, get_dataset_spec, register_dataset
from seedbench.errors import ConfigError, DataError
from tests.conftest import ROOT, make_cifar_dataset, make_idx_dataset

N_TRAIN, N_TEST, VAL = 30, 10, 5


def refused(exc_type: type[Exception], name: str, data_dir: Path, *fragments: str, **kwargs) -> str:
    """Both the plan-time check and the loader refuse, with the same one-line message holding `fragments`."""
    from seedbench.data import load_dataset

    messages = []
    for call in (check_dataset, load_dataset):
        with pytest.raises(exc_type) as info:
            call(name, data_dir, VAL, **kwargs)
        messages.append(str(info.value))
    check_msg, load_msg = messages
    assert check_msg == load_msg
    assert "\n" not in check_msg, check_msg
    for fragment in fragments:
        assert fragment in check_msg, (fragment, check_msg)
    return check_msg


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    make_idx_dataset(tmp_path / "mnist", n_train=N_TRAIN, n_test=N_TEST, gz=False)
    return tmp_path


@pytest.fixture
def mnist_gz_dir(tmp_path: Path) -> Path:
    make_idx_dataset(tmp_path / "mnist", n_train=N_TRAIN, n_test=N_TEST, gz=True)
    return tmp_path


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    make_cifar_dataset(tmp_path / "cifar10", per_batch=10)
    return tmp_path


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Datasets registered by a test are gone afterwards (the registry is process-wide)."""
    dataset_names()  # built-ins in
    saved = dict(registry._DATASETS)
    yield
    registry._DATASETS.clear()
    registry._DATASETS.update(saved)
    registry._CHECKED.clear()


def idx_bytes(dtype_code: int, array: np.ndarray, big_endian_dtype: str) -> bytes:
    """An IDX file with any element type, written byte by byte as the format specifies."""
    header = bytes([0, 0, dtype_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=big_endian_dtype).tobytes()


# -- the healthy case ---------------------------------------------------------------------------------


def test_check_reports_sizes_and_shapes(mnist_dir: Path, cifar_dir: Path) -> None:
    info = check_dataset("mnist", mnist_dir, VAL, limit_train=7)
    assert (info.in_shape, info.num_classes, info.n_train, info.n_val, info.n_test) == ((1, 28, 28), 10, 7, VAL, N_TEST)
    assert info.location == str(mnist_dir / "mnist") and len(info.files) == 4
    info = check_dataset("cifar10", cifar_dir, 10)
    assert (info.in_shape, info.n_train, info.n_val, info.n_test, info.augmentation) == ((3, 32, 32), 40, 10, 10, "cifar10")


def test_check_and_import_never_load_torch(mnist_gz_dir: Path, cifar_dir: Path) -> None:
    code = (
        "import sys\n"
        "import seedbench.data\n"
        "from seedbench.data.registry import check_dataset\n"
        f"print(check_dataset('mnist', {str(mnist_gz_dir)!r}, 5).n_train, check_dataset('cifar10', {str(cifar_dir)!r}, 10).n_train,"
        " check_dataset('digits').n_test)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert result.returncode == 0, result.stderr
    n_digits = 1797
    assert result.stdout.split() == [str(N_TRAIN - 5), "40", str(n_digits // 5)]


def test_results_are_cached_until_a_file_changes(tmp_path: Path, clean_registry: None) -> None:
    calls: list[Path] = []
    images = np.zeros((12, 4, 4), np.uint8)
    labels = np.arange(12) % 3
    marker = tmp_path / "tiny.bin"
    marker.write_bytes(b"v1")

    def load(location: Path) -> RawSplits:
        calls.append(location)
        return RawSplits(images, labels, images[:4], labels[:4], {"train_labels": str(location)})

    register_dataset(
        DatasetSpec(
            name="tiny",
            classes=3,
            shape=(1, 4, 4),
            load=load,
            locate=lambda d: marker,
            val_size=2,
            augmentation=None,
            how_to_get="it is made by the test",
        )
    )
    assert check_dataset("tiny").n_train == 10 and check_dataset("tiny", val_size=4).n_train == 8
    assert len(calls) == 1  # one read serves every val_size/limit_train
    marker.write_bytes(b"v2, longer")  # size and mtime change: read again
    check_dataset("tiny")
    assert len(calls) == 2


def test_num_classes_comes_from_the_spec_not_the_labels(tmp_path: Path) -> None:
    from seedbench.data import load_dataset

    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 3, n))  # classes 0..2 only
    data = load_dataset("mnist", tmp_path, VAL)
    assert data.num_classes == get_dataset_spec("mnist").classes
    assert int(data.y_train.max()) < 3


# -- IDX faults -----------------------------------------------------------------------------------------


def test_idx_label_255_is_refused(mnist_dir: Path) -> None:
    path = mnist_dir / "mnist" / "train-labels-idx1-ubyte"
    labels = np.zeros(N_TRAIN, np.uint8)
    labels[7] = 255
    write_idx(path, labels)
    refused(DataError, "mnist", mnist_dir, str(path), "label 255 (image 7) is outside 0..9", "re-download")


def test_idx_float32_labels_are_refused(mnist_dir: Path) -> None:
    path = mnist_dir / "mnist" / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(0x0D, np.arange(N_TEST) % 10, ">f4"))  # the right count, as floats
    refused(DataError, "mnist", mnist_dir, str(path), "float32", "must be unsigned bytes", "re-download")


def test_idx_wider_integer_images_are_refused(mnist_dir: Path) -> None:
    path = mnist_dir / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(0x0C, np.zeros((N_TRAIN, 28, 28)), ">i4"))
    refused(DataError, "mnist", mnist_dir, str(path), "int32")


def test_idx_wrong_image_shape(mnist_dir: Path) -> None:
    path = mnist_dir / "mnist" / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((N_TRAIN, 32, 32), np.uint8))
    refused(DataError, "mnist", mnist_dir, str(path), "images are 1x32x32", "is 1x28x28")


def test_idx_truncated_raw_file(mnist_dir: Path) -> None:
    path = mnist_dir / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    refused(DataError, "mnist", mnist_dir, str(path), "truncated file")


def test_idx_trailing_bytes(mnist_dir: Path) -> None:
    path = mnist_dir / "mnist" / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    refused(DataError, "mnist", mnist_dir, str(path), "2 bytes after the")


def test_idx_truncated_gzip_stream(mnist_gz_dir: Path) -> None:
    path = mnist_gz_dir / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # a download cut off half-way
    refused(DataError, "mnist", mnist_gz_dir, str(path), "truncated gzip")


def test_idx_corrupt_gzip(mnist_gz_dir: Path) -> None:
    path = mnist_gz_dir / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 16] = bytes(16)  # damaged in the middle of the deflate stream
    path.write_bytes(bytes(raw))
    refused(DataError, "mnist", mnist_gz_dir, str(path), "cannot read", "re-download")
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    refused(DataError, "mnist", mnist_gz_dir, str(path), "corrupt gzip")


def test_idx_missing_file(mnist_dir: Path) -> None:
    (mnist_dir / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    refused(DataError, "mnist", mnist_dir, str(mnist_dir / "mnist" / "t10k-labels-idx1-ubyte"), "missing")


def test_missing_dataset_says_how_to_get_it(tmp_path: Path) -> None:
    refused(DataError, "cifar10", tmp_path, "not found", str(tmp_path), get_dataset_spec("cifar10").how_to_get)


def test_idx_directory_instead_of_file(mnist_dir: Path) -> None:
    path = mnist_dir / "mnist" / "train-labels-idx1-ubyte"
    path.unlink()
    path.mkdir()
    refused(DataError, "mnist", mnist_dir, str(path), "is a directory")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "data.tar"
    path.write_bytes(b"not a folder")
    refused(DataError, "mnist", path, str(path), "is a file, not a directory")


def test_val_size_too_large_is_refused_at_plan_time(mnist_dir: Path) -> None:
    with pytest.raises(DataError, match=f"validation size {N_TRAIN} must be between 0 and {N_TRAIN - 1}"):
        check_dataset("mnist", mnist_dir, N_TRAIN)


# -- CIFAR faults ----------------------------------------------------------------------------------------


def test_cifar_label_50_is_refused(cifar_dir: Path) -> None:
    path = cifar_dir / "cifar10" / "data_batch_4"
    labels = np.arange(10) % 10
    labels[3] = 50
    write_batch(path, np.zeros((10, 3072), np.uint8), labels)
    refused(DataError, "cifar10", cifar_dir, str(path), "label 50 at position 3 is outside 0..9")


@pytest.mark.parametrize("labels", [[1.0] * 10, [True] * 10, ["3"] * 10, np.full(10, 2.0)], ids=["floats", "bools", "text", "float-array"])
def test_cifar_labels_must_be_integers(cifar_dir: Path, labels: object) -> None:
    path = cifar_dir / "cifar10" / "test_batch"
    with open(path, "wb") as fh:
        pickle.dump({b"data": np.zeros((10, 3072), np.uint8), b"labels": labels}, fh)
    refused(DataError, "cifar10", cifar_dir, str(path), "label")


def test_cifar_wrong_image_shape(cifar_dir: Path) -> None:
    path = cifar_dir / "cifar10" / "data_batch_2"
    write_batch(path, np.zeros((10, 1024), np.uint8), np.zeros(10))  # grey 32x32 rows
    refused(DataError, "cifar10", cifar_dir, str(path), "1024 values, expected 3072")


def test_cifar_truncated_batch(cifar_dir: Path) -> None:
    path = cifar_dir / "cifar10" / "data_batch_1"
    path.write_bytes(path.read_bytes()[:-200])
    refused(DataError, "cifar10", cifar_dir, str(path), "not a readable CIFAR-10 pickle batch", "re-download")


def test_cifar_missing_batch_and_directory_batch(cifar_dir: Path) -> None:
    path = cifar_dir / "cifar10" / "data_batch_5"
    path.unlink()
    refused(DataError, "cifar10", cifar_dir, str(path), "missing CIFAR-10 batch file")
    path.mkdir()
    refused(DataError, "cifar10", cifar_dir, str(path), "is a directory")


# -- hostile pickles ----------------------------------------------------------------------------------


class _Payload:
    """An object whose unpickling calls `func(*args)`: what a hostile download would carry."""

    def __init__(self, func: object, *args: object):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile_payloads(marker: Path) -> dict[str, object]:
    """Ways a pickle can run code; each would create `marker` if it ran."""
    import builtins

    shell = f"touch {marker}"
    python = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": {b"data": _Payload(os.system, shell), b"labels": [0]},
        "exec": {b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Payload(builtins.exec, python)]},
        "eval": _Payload(builtins.eval, python),
        "open": {b"data": _Payload(builtins.open, str(marker), "w"), b"labels": [0]},
        "subprocess": _Payload(subprocess.call, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("kind", ["os.system", "exec", "eval", "open", "subprocess"])
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_is_refused_and_never_runs(cifar_dir: Path, tmp_path: Path, kind: str, protocol: int) -> None:
    marker = tmp_path / f"pwned-{kind}-{protocol}"
    path = cifar_dir / "cifar10" / "data_batch_1"
    path.write_bytes(pickle.dumps(hostile_payloads(marker)[kind], protocol=protocol))
    message = refused(DataError, "cifar10", cifar_dir, str(path), "refused to load", "re-download")
    assert not marker.exists(), "the pickle ran code"
    assert "may be malicious" in message


def test_the_unpickler_allows_only_numpy_arrays_and_plain_types() -> None:
    modules = {module for module, _ in ALLOWED_GLOBALS}
    assert modules <= {
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core.numeric",
        "numpy._core.numeric",
        "_codecs",
        "builtins",
        "__builtin__",
    }
    assert not {name for module, name in ALLOWED_GLOBALS if module in ("builtins", "__builtin__")} & {
        "eval",
        "exec",
        "open",
        "getattr",
        "__import__",
        "compile",
        "globals",
        "setattr",
    }


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("as_array", [False, True], ids=["labels-list", "labels-array"])
def test_genuine_batches_still_load(tmp_path: Path, protocol: int, as_array: bool) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 3072)).astype(np.uint8)
    labels = rng.integers(0, 10, 6)
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": labels if as_array else [int(v) for v in labels],
        b"data": images,
        b"filenames": [b"a.png"] * 6,
    }
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    x, y = read_batch(path, classes=10)
    assert np.array_equal(x.reshape(6, -1), images) and np.array_equal(y, labels)


def test_python2_numpy_core_batches_load(tmp_path: Path) -> None:
    """The official files name numpy.core.multiarray (numpy 1.x, Python 2); numpy 2 calls it numpy._core."""
    images = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    raw = pickle.dumps({b"data": images, b"labels": [3, 9]}, protocol=2)
    assert b"numpy._core.multiarray" in raw
    path = tmp_path / "test_batch"
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    x, y = read_batch(path, classes=10)
    assert np.array_equal(x.reshape(2, -1), images) and list(y) == [3, 9]


def test_write_batch_roundtrip_through_the_dataset(cifar_dir: Path) -> None:
    from seedbench.data import load_dataset

    data = load_dataset("cifar10", cifar_dir, val_size=10)
    assert data.x_train.shape == (40, 3, 32, 32) and data.num_classes == 10


# -- the registry -------------------------------------------------------------------------------------


def test_unknown_dataset_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_dataset("mnsit", tmp_path)
    message = str(info.value)
    assert "did you mean 'mnist'" in message and all(name in message for name in ("digits", "fmnist", "cifar10"))


def test_builtin_augmentation_names_match_the_torch_side() -> None:
    from seedbench.data.augment import AUGMENTATIONS

    assert set(AUGMENTATIONS) == set(registry.BUILTIN_AUGMENTATIONS)
    assert {get_dataset_spec(n).augmentation for n in ("digits", "mnist", "fmnist", "cifar10")} <= set(AUGMENTATIONS)


def test_augmentation_comes_from_the_spec(tmp_path: Path, clean_registry: None) -> None:
    import torch

    from seedbench.data.augment import Augmenter

    images = np.zeros((8, 3, 8, 8), np.uint8)
    labels = np.arange(8) % 2

    def spec(name: str, augmentation: object) -> DatasetSpec:
        return register_dataset(
            DatasetSpec(
                name=name,
                classes=2,
                shape=(3, 8, 8),
                load=lambda loc: RawSplits(images, labels, images, labels),
                locate=lambda d: tmp_path,
                val_size=2,
                augmentation=augmentation,
                how_to_get="-",
            )
        )

    spec("plain", None)
    with pytest.raises(ConfigError, match="declares no augmentation; set augment=false"):
        check_dataset("plain", augment=True)
    assert check_dataset("plain").n_train == 6  # without augment it is fine
    with pytest.raises(ConfigError, match="declares no augmentation"):
        Augmenter("plain", torch.Generator().manual_seed(0))

    spec("colour", "cifar10")  # a new name gets the augmentation its spec names, not MNIST's
    batch = torch.rand(4, 3, 8, 8)
    standardised = Augmenter("colour", torch.Generator().manual_seed(0)).eval_transform(batch)
    assert torch.allclose(standardised.flatten(1).mean(1), torch.zeros(4), atol=1e-5)

    spec("custom", lambda batch, generator: batch.flip(-1))
    custom = Augmenter("custom", torch.Generator().manual_seed(0))
    assert torch.equal(custom(batch), batch.flip(-1)) and torch.equal(custom.eval_transform(batch), batch)


def test_register_refuses_a_second_spec_under_a_taken_name(tmp_path: Path, clean_registry: None) -> None:
    mnist = get_dataset_spec("mnist")
    other = DatasetSpec(
        name="mnist", classes=5, shape=(1, 28, 28), load=mnist.load, locate=mnist.locate, val_size=10, augmentation=None, how_to_get="-"
    )
    with pytest.raises(ConfigError, match="registered twice"):
        register_dataset(other)
    assert get_dataset_spec("mnist") is mnist
    register_dataset(other, replace=True)
    assert get_dataset_spec("mnist").classes == 5


@pytest.mark.parametrize(
    "field,value,fragment",
    [("shape", (28, 28), "shape="), ("classes", 1, "classes="), ("augmentation", "imagenet", "augmentation="), ("val_size", -1, "val_size=")],
)
def test_spec_fields_are_validated(field: str, value: object, fragment: str) -> None:
    fields = dict(
        name="bad", classes=10, shape=(1, 28, 28), load=lambda loc: None, locate=lambda d: None, val_size=0, augmentation=None, how_to_get="-"
    )
    fields[field] = value
    with pytest.raises(ConfigError, match=fragment):
        DatasetSpec(**fields)
