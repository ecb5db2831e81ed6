"""Shared fixtures: small datasets written in the real file formats, and isolated stores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seedbench.data.cifar import write_batch
from seedbench.data.idx import write_idx

ROOT = Path(__file__).resolve().parent.parent
FMNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")

# Keep every test process to one thread: the suite runs on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def make_idx_dataset(directory: Path, n_train: int = 120, n_test: int = 40, gz: bool = True, seed: int = 0) -> Path:
    """An MNIST-format dataset whose class is readable from the image (a bright row per class)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label, :] = 255
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels)
    return directory


def make_cifar_dataset(directory: Path, per_batch: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        write_batch(directory / name, rng.integers(0, 256, (per_batch, 3072)), labels)
    return directory


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    return make_idx_dataset(tmp_path / "data" / "mnist").parent


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    return make_cifar_dataset(tmp_path / "data" / "cifar10").parent


def sweep_args(store: str | Path, *extra: str, method: str = "sgd", model: str = "fc", dataset: str = "digits", seeds: str = "0") -> list[str]:
    """`seedbench sweep` of one small grid into `store`: the command line most CLI tests start from."""
    return ["sweep", "--method", method, "--model", model, "--dataset", dataset, "--seeds", seeds, "--store", str(store), *extra]


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "seedbench.cli", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def scratch_project(tmp_path: Path) -> Path:
    """A copy of the machinable project (components + catalogue) so tests never touch ./storage."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "components", project / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "machinable.yaml", project / "machinable.yaml")
    return project


# The session's one local Ray cluster, shared by every module that asks for `ray_cluster` (a fixture
# imported into two test modules would start two clusters in one process).
from tests.ray_fixtures import ray_cluster  # noqa: E402,F401

# The session's one local Slurm (cluster/slurm/up.sh), for the Slurm engine's tests; they skip where it cannot run.
from tests.slurm_fixtures import slurm_cluster  # noqa: E402,F401
