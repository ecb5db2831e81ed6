"""Reader for CIFAR-10's standard 'python version' pickle batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from seedbench.errors import DataError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickle batch as (N, 3, 32, 32) uint8 images and (N,) labels."""
    if not path.is_file():
        raise DataError(f"{path}: missing CIFAR-10 batch file; the directory needs data_batch_1..5 and test_batch")
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # pickle raises many unrelated types on corrupt input
        raise DataError(f"{path}: not a readable CIFAR-10 pickle batch ({type(exc).__name__}); re-download it") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (expected a dict, found {type(batch).__name__})")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{path}: CIFAR-10 batch lacks 'data' or 'labels'; re-download it")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: image rows have {data.shape[-1]} values, expected 3072 (3x32x32); truncated or wrong file")
    if len(data) != len(labels):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels; the file is inconsistent, re-download it")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), labels


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a batch in the standard format (used by tests and tools)."""
    payload = {b"data": np.asarray(images, dtype=np.uint8).reshape(len(images), -1), b"labels": list(map(int, labels))}
    with open(path, "wb") as fh:
        pickle.dump(payload, fh)


def read_cifar10(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    parts = [read_batch(directory / name) for name in TRAIN_BATCHES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_batch(directory / TEST_BATCH)
    return x_train, y_train, x_test, y_test
