"""NES is budgeted in images: floor(epochs * images_per_epoch / (d * batch)) updates in all, each one
belonging to the epoch in which its last image is consumed (the reference's counting)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from seedbench.data.datasets import Dataset
from seedbench.optim import NES
from seedbench.train.loop import DivergenceRules, TrainSettings, gradient_free_updates, train


def test_the_study_budget_is_625_updates_not_700() -> None:
    # 100 epochs of the 50,000 FMNIST training images, population 250, batch 32: 5,000,000 / 8,000
    assert gradient_free_updates(100, 50_000, 250 * 32) == 625
    assert 100 * math.ceil(50_000 / (250 * 32)) == 700  # what whole updates per epoch would have cost
    per_epoch = [gradient_free_updates(e, 50_000, 8_000) - gradient_free_updates(e - 1, 50_000, 8_000) for e in range(1, 101)]
    assert sum(per_epoch) == 625 and set(per_epoch) == {6, 7}  # 6.25 a epoch: a 7 every 4th epoch
    assert per_epoch[:4] == [6, 6, 6, 7]


def test_counting_floors_the_cumulative_images() -> None:
    assert gradient_free_updates(0, 50_000, 8_000) == 0
    assert [gradient_free_updates(e, 20, 32) for e in range(5)] == [0, 0, 1, 1, 2]
    assert gradient_free_updates(3, 32, 32) == 3
    for bad in ((-1, 10, 5), (1, -10, 5), (1, 10, 0), (1.5, 10, 5)):
        with pytest.raises(ValueError):
            gradient_free_updates(*bad)  # type: ignore[arg-type]


class CountingNES(NES):
    """NES that counts its steps and closure calls (the images it made the trainer draw)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.step_calls = 0
        self.closure_calls = 0

    def step(self, closure=None):  # type: ignore[override]
        self.step_calls += 1

        def counted():
            self.closure_calls += 1
            return closure()

        return super().step(counted)


def _data(n_train: int) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n_train + 40, 1, 4, 4, generator=gen)
    y = torch.randint(0, 3, (n_train + 40,), generator=gen)
    return Dataset(
        name="synthetic",
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train : n_train + 20],
        y_val=y[n_train : n_train + 20],
        x_test=x[n_train + 20 :],
        y_test=y[n_train + 20 :],
        num_classes=3,
        source="test",
    )


def _run(n_train: int, epochs: int, dims: int, batch: int, tmp_path: Path) -> tuple[CountingNES, dict, list[dict]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    opt = CountingNES(model.parameters(), lr=0.01, dims=dims, seed=0)
    path = tmp_path / "epochs.jsonl"
    settings = TrainSettings(epochs=epochs, batch_size=batch, data_seed=1, augment_seed=2, divergence=DivergenceRules(mode="none"), metrics_path=path)
    result = train(model, opt, _data(n_train), settings)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return opt, result, rows


def test_train_makes_the_budgeted_number_of_updates(tmp_path: Path) -> None:
    # 100 images a epoch, 8 members x batch 4 = 32 images an update: 3.125 updates a epoch
    opt, result, rows = _run(n_train=100, epochs=5, dims=8, batch=4, tmp_path=tmp_path)
    assert opt.step_calls == gradient_free_updates(5, 100, 32) == 15 == result["updates"]
    assert opt.closure_calls == 15 * 8
    assert [r["updates"] for r in rows] == [3, 6, 9, 12, 15]  # floor(100 e / 32)
    assert result["status"] == "finished" and result["epochs_completed"] == 5


def test_an_epoch_without_an_update_still_gets_its_row(tmp_path: Path) -> None:
    # 20 images a epoch, 32 an update: updates finish in epochs 2 and 4 only
    opt, result, rows = _run(n_train=20, epochs=4, dims=8, batch=4, tmp_path=tmp_path)
    assert opt.step_calls == 2 and opt.closure_calls == 16
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["updates"] for r in rows] == [0, 1, 1, 2]
    assert [r["train_loss"] is None for r in rows] == [True, False, True, False]
    assert all(isinstance(r["val_acc"], float) for r in rows)
    assert result["status"] == "finished" and result["updates"] == 2


def test_a_closure_count_that_breaks_the_budget_is_an_error(tmp_path: Path) -> None:
    class Liar(CountingNES):
        @property
        def evaluations_per_step(self) -> int:
            return self.dims - 1

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    settings = TrainSettings(epochs=1, batch_size=4, data_seed=1, augment_seed=2)
    with pytest.raises(RuntimeError, match="closure 8 times"):
        train(model, Liar(model.parameters(), lr=0.01, dims=8, seed=0), _data(100), settings)
