"""The SGD-gap switches (augment_clip, augment_pad, val_split): today's behaviour by default, identities kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seedbench.data.augment import Augmenter, mnist_augment, random_brightness, random_crop
from seedbench.data.datasets import _split
from seedbench.data.spec import SPLIT_SEED
from seedbench.seeding import generator
from seedbench.sweep.grid import Cell
from seedbench.sweep.plan import CellIndex, resolve_cell
from seedbench.sweep.runners.store_context import open_project
from tests.conftest import run_cli

# Identities of two Table-1 cells as a sweep stored them before these switches existed (RBD with
# Hadamard bases, seed 0; NES, seed 3; FC-FMNIST, ~table1), read from that store's id.json.
RECORDED_BEFORE = {
    ("rbd", 0, ("table1", "hadamard")): "a755d5f5f2e12d8741b14f59",
    ("nes", 3, ("table1",)): "57d334760cf2637de709c655",
}


def _identity(method: str, seed: int, presets: tuple[str, ...], **overrides) -> str:
    with open_project():
        resolved = resolve_cell(Cell(method, "fc", "fmnist", (("seed", seed),), presets, tuple(sorted(overrides.items()))))
        return CellIndex([resolved], None).identity(resolved)


@pytest.mark.parametrize(("key", "identity"), list(RECORDED_BEFORE.items()))
def test_a_cell_recorded_before_the_switches_keeps_its_identity(key: tuple, identity: str) -> None:
    method, seed, presets = key
    assert _identity(method, seed, presets) == identity
    assert _identity(method, seed, presets, augment_clip=False, augment_pad="zeros", val_split="fixed") == identity
    for changed in ({"augment_clip": True}, {"augment_pad": "reflect"}, {"val_split": "block"}):
        assert _identity(method, seed, presets, **changed) != identity, changed


def _batch(n: int = 16) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=generator(5, "cpu"))


def test_default_augmentation_is_unchanged_and_clip_only_clamps_the_same_draws() -> None:
    batch = _batch()
    default = Augmenter("fmnist", generator(7, "cpu"))(batch)
    gen = generator(7, "cpu")  # the pipeline as it was: zero padding, crop, brightness, one stream
    by_hand = random_brightness(random_crop(batch, 3, gen), 0.5, gen)
    assert torch.equal(default, by_hand)
    assert default.min() < 0 or default.max() > 1  # +-0.5 brightness leaves [0, 1] unclipped

    clipped = Augmenter("fmnist", generator(7, "cpu"), {"clip": True, "pad": "zeros"})(batch)
    assert torch.equal(clipped, default.clamp(0, 1))


def test_pad_mode_changes_only_the_border_the_crop_reaches() -> None:
    batch = _batch() + 0.25  # no zero pixels, so zero padding is visible
    zeros = mnist_augment(batch, generator(3, "cpu"))
    reflect = mnist_augment(batch, generator(3, "cpu"), pad="reflect")
    assert not torch.equal(zeros, reflect)
    replicate = mnist_augment(batch, generator(3, "cpu"), pad="replicate")
    assert not torch.equal(replicate, reflect)
    # the draws are the same: where neither crop touches padding the images agree
    interior = (zeros - reflect)[:, :, 3:-3, 3:-3]
    assert torch.count_nonzero(interior) == 0


def test_a_loaded_dataset_carries_the_options_to_the_augmenter() -> None:
    from seedbench.data.datasets import Dataset

    empty = torch.zeros(0)
    data = Dataset("fmnist", empty, empty, empty, empty, empty, empty, 10, "-", augment_options={"clip": True, "pad": "reflect"})
    assert Augmenter(data, generator(0, "cpu")).options == {"clip": True, "pad": "reflect"}
    assert data.to("cpu").augment_options == {"clip": True, "pad": "reflect"}
    assert Augmenter("fmnist", generator(0, "cpu")).options == {}


def test_validation_split_fixed_is_the_old_permutation_and_block_is_a_contiguous_block() -> None:
    x = np.arange(1000)
    y = x % 10
    x_tr, _, x_val, _ = _split(x, y, 100, "toy")
    order = np.random.default_rng(SPLIT_SEED).permutation(1000)
    assert np.array_equal(x_val, order[:100]) and np.array_equal(x_tr, order[100:])

    blocks = set()
    for seed in range(5):
        b_tr, b_ytr, b_val, _ = _split(x, y, 100, "toy", "block", seed)
        assert np.array_equal(b_val, np.arange(b_val[0], b_val[0] + 100))  # contiguous
        assert sorted(np.concatenate([b_tr, b_val]).tolist()) == list(range(1000)) and np.array_equal(b_ytr, b_tr % 10)
        assert np.array_equal(_split(x, y, 100, "toy", "block", seed)[2], b_val)  # the seed decides
        blocks.add(int(b_val[0]))
    assert len(blocks) > 1


def test_a_sweep_trains_with_the_switches_and_records_them(tmp_path: Path) -> None:
    store = tmp_path / "store"
    base = ["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--store", str(store), "--epochs", "1"]
    small = ["--set", "limit_train=64", "--set", "val_size=32", "--set", "augment=true", "--quiet"]
    switched = [*small, "--set", "augment_clip=true", "--set", "augment_pad=reflect", "--set", "val_split=block"]
    for extra in (small, switched):
        result = run_cli(*base, *extra)
        assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in store.rglob("run.json")]
    assert len(records) == 2 and all(r["status"] == "finished" for r in records)
    configs = sorted((r["config"]["augment_clip"], r["config"]["augment_pad"], r["config"]["val_split"]) for r in records)
    assert configs == [(False, "zeros", "fixed"), (True, "reflect", "block")]
    bad = run_cli(*base, *small, "--set", "augment_pad=wrap")
    assert bad.returncode == 2 and "augment_pad" in bad.stderr and "Traceback" not in bad.stderr
