import gzip

import numpy as np
import pytest
import torch

from seedbench.data import availability, load_dataset
from seedbench.data.augment import Augmenter, per_image_standardize, random_crop
from seedbench.data.idx import read_idx, write_idx
from seedbench.errors import DataError
from tests.conftest import FMNIST_DEBIAN, make_cifar_dataset, make_idx_dataset


def test_digits_served_as_28x28_with_disjoint_fixed_splits():
    data = load_dataset("digits")
    assert data.in_shape == (1, 28, 28)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 1797
    assert len(data.x_val) == 300
    assert 0.0 <= float(data.x_train.min()) and float(data.x_train.max()) <= 1.0
    again = load_dataset("digits")
    assert torch.equal(data.x_val, again.x_val)  # the split does not depend on any run seed
    assert data.y_train.dtype == torch.int64 and data.num_classes == 10


def test_validation_is_carved_out_of_train_without_overlap():
    from seedbench.data.datasets import _split

    ids = np.arange(1000)
    x_tr, y_tr, x_val, y_val = _split(ids, ids, 100, "x")
    assert len(x_val) == 100 and len(x_tr) == 900
    assert not set(x_tr) & set(x_val) and set(x_tr) | set(x_val) == set(ids)


def test_val_size_and_limit_train():
    data = load_dataset("digits", val_size=100, limit_train=64)
    assert len(data.x_val) == 100 and len(data.x_train) == 64
    with pytest.raises(DataError, match="validation size"):
        load_dataset("digits", val_size=5000)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip_raw_and_gzip(tmp_path, gz):
    make_idx_dataset(tmp_path / "mnist", n_train=50, n_test=20, gz=gz)
    data = load_dataset("mnist", data_dir=tmp_path, val_size=10)
    assert data.x_train.shape == (40, 1, 28, 28) and data.x_test.shape == (20, 1, 28, 28)
    assert data.source.endswith("mnist")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    make_idx_dataset(tmp_path / "fmnist", n_train=30, n_test=10)
    monkeypatch.setenv("SEEDBENCH_DATA", str(tmp_path))
    assert len(load_dataset("fmnist", val_size=10).x_train) == 20


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(err.value)
    assert "not found" in message and "--data-dir" in message and "\n" not in message


def test_wrong_magic_number_names_the_file(tmp_path):
    make_idx_dataset(tmp_path / "mnist", n_train=20, n_test=10, gz=False)
    bad = tmp_path / "mnist" / "train-images-idx3-ubyte"
    raw = bytearray(bad.read_bytes())
    raw[2] = 0x42
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: wrong magic number"):
        load_dataset("mnist", data_dir=tmp_path, val_size=5)


def test_truncated_file_is_reported(tmp_path):
    make_idx_dataset(tmp_path / "mnist", n_train=20, n_test=10, gz=True)
    bad = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    payload = gzip.decompress(bad.read_bytes())
    with gzip.open(bad, "wb") as fh:
        fh.write(payload[:-100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: truncated file"):
        load_dataset("mnist", data_dir=tmp_path, val_size=5)


def test_corrupt_gzip_is_reported(tmp_path):
    make_idx_dataset(tmp_path / "mnist", n_train=20, n_test=10, gz=True)
    bad = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: cannot read"):
        load_dataset("mnist", data_dir=tmp_path, val_size=5)


def test_image_label_count_mismatch(tmp_path):
    make_idx_dataset(tmp_path / "mnist", n_train=20, n_test=10, gz=False)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match="20 images but .* has 19 labels"):
        load_dataset("mnist", data_dir=tmp_path, val_size=5)


def test_swapped_images_and_labels(tmp_path):
    make_idx_dataset(tmp_path / "mnist", n_train=20, n_test=10, gz=False)
    d = tmp_path / "mnist"
    (d / "train-images-idx3-ubyte").rename(d / "tmp")
    (d / "train-labels-idx1-ubyte").rename(d / "train-images-idx3-ubyte")
    (d / "tmp").rename(d / "train-labels-idx1-ubyte")
    with pytest.raises(DataError, match="swapped"):
        load_dataset("mnist", data_dir=tmp_path, val_size=5)


def test_cifar_pickle_batches(tmp_path):
    make_cifar_dataset(tmp_path / "cifar10", per_batch=10)
    data = load_dataset("cifar10", data_dir=tmp_path, val_size=10)
    assert data.x_train.shape == (40, 3, 32, 32) and data.x_test.shape == (10, 3, 32, 32)


def test_corrupt_cifar_batch(tmp_path):
    make_cifar_dataset(tmp_path / "cifar10", per_batch=10)
    (tmp_path / "cifar10" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3: not a readable CIFAR-10 pickle"):
        load_dataset("cifar10", data_dir=tmp_path, val_size=10)


def test_read_idx_rejects_tiny_file(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="truncated"):
        read_idx(path, 1)


def test_availability_lists_every_dataset(tmp_path):
    rows = {r["dataset"]: r for r in availability(tmp_path)}
    assert rows["digits"]["status"] == "available"
    assert rows["mnist"]["status"] == "missing" and "--data-dir" in rows["mnist"]["how_to_get"]


def test_random_crop_moves_content_within_padding():
    gen = torch.Generator().manual_seed(0)
    batch = torch.zeros(64, 1, 28, 28)
    batch[:, :, 10:18, 10:18] = 1.0
    cropped = random_crop(batch, 3, gen)
    assert cropped.shape == batch.shape
    assert torch.allclose(cropped.sum((1, 2, 3)), batch.sum((1, 2, 3)))  # the square never leaves the frame
    assert not torch.equal(cropped, batch)


def test_augmenter_is_its_own_reproducible_stream():
    batch = torch.rand(16, 1, 28, 28)
    a = Augmenter("mnist", torch.Generator().manual_seed(1))(batch)
    b = Augmenter("mnist", torch.Generator().manual_seed(1))(batch)
    c = Augmenter("mnist", torch.Generator().manual_seed(2))(batch)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_per_image_standardization():
    out = per_image_standardize(torch.rand(4, 3, 32, 32))
    assert torch.allclose(out.flatten(1).mean(1), torch.zeros(4), atol=1e-5)
    assert torch.allclose(out.flatten(1).std(1, unbiased=False), torch.ones(4), atol=1e-4)
    cifar = Augmenter("cifar10", torch.Generator().manual_seed(0))(torch.rand(8, 3, 32, 32))
    assert cifar.shape == (8, 3, 32, 32)


@pytest.mark.skipif(not FMNIST_DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_autodetected():
    data = load_dataset("fmnist")
    assert data.x_train.shape == (50_000, 1, 28, 28) and data.x_val.shape == (10_000, 1, 28, 28)
    assert data.x_test.shape == (10_000, 1, 28, 28)
    assert sorted(data.y_test.unique().tolist()) == list(range(10))


def test_digits_resize_matches_torch_bilinear():
    """digits are resized in numpy (no torch at plan time) with torch's formula: the same pixels.

    torch's own CPU kernel rounds differently without FMA units (then a pixel may move by one grey
    level); with AVX2/AVX-512 it is the reference the numpy version reproduces bit for bit.
    """
    from sklearn.datasets import load_digits

    from seedbench.data.builtin import resize_bilinear

    images = load_digits().images.astype(np.float32) / 16.0
    ours = resize_bilinear(images, 28)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(images).unsqueeze(1), size=(28, 28), mode="bilinear", align_corners=False)
    theirs = theirs.squeeze(1).numpy()
    to_pixels = lambda a: np.round(np.clip(a, 0, 1) * np.float32(255)).astype(np.int16)  # noqa: E731
    assert np.abs(to_pixels(ours) - to_pixels(theirs)).max() <= 1
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert np.array_equal(ours, theirs)


def test_digits_file_matches_scikit_learn():
    from sklearn.datasets import load_digits

    from seedbench.data.builtin import locate_digits
    from seedbench.data.registry import get_dataset_spec

    raw = get_dataset_spec("digits").load(locate_digits())
    bunch = load_digits()
    assert sorted(np.concatenate([raw.y_train, raw.y_test]).tolist()) == sorted(bunch.target.tolist())
    assert len(raw.x_train) + len(raw.x_test) == len(bunch.images)
