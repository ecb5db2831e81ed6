"""Stop rules: "accuracy" (RBD/FPD/SGD, the reference's `epoch > 4`), "nan" (NES) and "none".

The rules are checked one by one through DivergenceRules.check, then end to end through train(), where
a validation floor of 100% accuracy makes the accuracy rule fire deterministically at a known epoch.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seedbench.data.datasets import Dataset
from seedbench.optim import NES
from seedbench.train.loop import DivergenceRules, TrainSettings, optimizer_stop_rule, train

NAN, INF = float("nan"), float("inf")


def _accuracy(**kw) -> DivergenceRules:
    return DivergenceRules(mode="accuracy", **kw)


def test_accuracy_rule_applies_only_after_the_given_epoch_and_names_itself() -> None:
    rules = _accuracy()
    assert rules.check(4, 2.3, 2.3, 0.10) is None, "the reference tests epoch > 4: epoch 4 is still spared"
    reason = rules.check(5, 2.3, 2.3, 0.10)
    assert reason == "stop rule 'accuracy': validation accuracy 0.100 <= 0.15 after epoch 5"
    assert rules.check(5, 2.3, 2.3, 0.15) is not None, "<= 15%: the floor itself counts as diverged"
    assert rules.check(5, 2.3, 2.3, 0.151) is None
    custom = _accuracy(min_val_acc=0.5, acc_after_epoch=1)
    assert custom.check(1, 1.0, 1.0, 0.4) is None
    assert "0.400 <= 0.5 after epoch 2" in custom.check(2, 1.0, 1.0, 0.4)


def test_accuracy_rule_stops_on_huge_validation_loss_at_any_epoch() -> None:
    reason = _accuracy().check(1, 2.0, 1000.5, 0.9)
    assert reason is not None and reason.startswith("stop rule 'accuracy': validation loss 1000")
    assert _accuracy().check(1, 2.0, 1000.0, 0.9) is None, "the bound is > 1000, not >="
    assert _accuracy(max_val_loss=10.0).check(1, 2.0, 11.0, 0.9) is not None


@pytest.mark.parametrize("mode", ["accuracy", "nan"])
@pytest.mark.parametrize(
    ("train_loss", "val_loss", "what"),
    [
        (NAN, 2.0, "non-finite training loss"),
        (INF, 2.0, "non-finite training loss"),
        (2.0, NAN, "non-finite validation loss"),
        (2.0, INF, "non-finite validation loss"),
    ],
)
def test_non_finite_losses_stop_under_accuracy_and_nan(mode: str, train_loss: float, val_loss: float, what: str) -> None:
    reason = DivergenceRules(mode=mode).check(1, train_loss, val_loss, 0.9)
    assert reason is not None and reason.startswith(f"stop rule '{mode}': {what}")
    assert DivergenceRules(mode="none").check(1, train_loss, val_loss, 0.9) is None


def test_nan_rule_ignores_accuracy_and_large_losses() -> None:
    rules = DivergenceRules(mode="nan")
    assert rules.check(50, 2.3, 2.3, 0.0) is None
    assert rules.check(50, 5000.0, 5000.0, 0.0) is None


def test_an_epoch_without_a_training_loss_is_not_a_nan() -> None:
    """NES epochs in which no update finished report train_loss None; that is no reason to stop."""
    assert DivergenceRules(mode="nan").check(1, None, 2.3, 0.1) is None
    assert DivergenceRules(mode="nan").check(1, None, NAN, 0.1) is not None


def test_from_config_maps_the_keys_and_the_defaults_come_from_the_method_and_optimizer() -> None:
    from seedbench.optim import NES, RBD
    from seedbench.registry import get_method

    params = [torch.nn.Parameter(torch.zeros(3))]
    assert optimizer_stop_rule(NES(params, lr=0.1, dims=4)) == "nan", "NES declares its own rule"
    assert optimizer_stop_rule(RBD(params, lr=0.1, dims=2)) == "accuracy"
    assert optimizer_stop_rule(None) == "accuracy"
    assert get_method("nes").stop_rule == "nan" and get_method("rbd").stop_rule == "accuracy"
    assert get_method("nes").resolve({}).stop_rule == "nan", "a cell takes its method's rule"
    assert get_method("nes").resolve({"stop_rule": "accuracy"}).stop_rule == "accuracy", "explicit beats the default"
    unresolved = DivergenceRules.from_config(None, 0.2, 3)
    assert unresolved.mode is None and unresolved.min_val_acc == 0.2 and unresolved.acc_after_epoch == 3
    assert unresolved.resolved("nan").mode == "nan" and unresolved.resolved().mode == "accuracy"
    assert unresolved.resolved("nan").min_val_acc == 0.2
    with pytest.raises(ValueError, match="call resolved"):
        unresolved.check(1, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="stop rule"):
        DivergenceRules.from_config("sometimes")
    with pytest.raises(ValueError, match="min_val_acc"):
        DivergenceRules.from_config("accuracy", min_acc=15)
    with pytest.raises(ValueError, match="acc_after_epoch"):
        DivergenceRules.from_config("accuracy", after_epoch=-1)


def test_the_legacy_enabled_switch_means_none() -> None:
    rules = DivergenceRules(enabled=False)
    assert rules.resolved("accuracy").mode == "none" and rules.resolved("nan").mode == "none"
    assert DivergenceRules(mode="accuracy", enabled=False).check(9, NAN, NAN, 0.0) is None


# ----------------------------------------------------------------------------- through train()
def _data(n: int = 64, poison: bool = False) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3 * n, 1, 4, 4, generator=gen)
    y = torch.randint(0, 3, (3 * n,), generator=gen)
    if poison:
        x[:n] = float("nan")  # every training batch carries NaN
    return Dataset(
        name="synthetic",
        x_train=x[:n],
        y_train=y[:n],
        x_val=x[n : 2 * n],
        y_val=y[n : 2 * n],
        x_test=x[2 * n :],
        y_test=y[2 * n :],
        num_classes=3,
        source="test",
    )


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


def _settings(rules: DivergenceRules, epochs: int = 6) -> TrainSettings:
    return TrainSettings(epochs=epochs, batch_size=8, data_seed=1, augment_seed=2, divergence=rules)


def test_train_applies_the_method_default_rule() -> None:
    """A floor of 100% accuracy always fires: SGD stops right after `after_epoch`, NES ("nan") never does."""
    rules = DivergenceRules.from_config(None, min_acc=1.0, after_epoch=2)
    model = _model()
    sgd = train(model, torch.optim.SGD(model.parameters(), lr=0.01), _data(), _settings(rules))
    assert sgd["status"] == "diverged" and sgd["epochs_completed"] == 3 and sgd["stop_rule"] == "accuracy"
    assert sgd["reason"].startswith("stop rule 'accuracy': validation accuracy") and sgd["reason"].endswith("after epoch 3")
    assert "test_acc" not in sgd
    model = _model()
    nes = train(model, NES(model.parameters(), lr=0.01, dims=4, seed=0), _data(), _settings(rules))
    assert nes["status"] == "finished" and nes["epochs_completed"] == 6 and nes["stop_rule"] == "nan"
    forced = DivergenceRules.from_config("accuracy", min_acc=1.0, after_epoch=2)
    model = _model()
    nes = train(model, NES(model.parameters(), lr=0.01, dims=4, seed=0), _data(), _settings(forced))
    assert nes["status"] == "diverged" and nes["epochs_completed"] == 3


def test_train_stops_nes_on_nan_and_none_never_stops() -> None:
    model = _model()
    nes = train(model, NES(model.parameters(), lr=0.01, dims=4, seed=0), _data(poison=True), _settings(DivergenceRules()))
    assert nes["status"] == "diverged" and nes["epochs_completed"] == 1
    assert nes["reason"].startswith("stop rule 'nan': non-finite training loss")
    assert math.isnan(float(nes["train_loss"]))
    model = _model()
    off = train(model, torch.optim.SGD(model.parameters(), lr=0.01), _data(poison=True), _settings(DivergenceRules(mode="none"), epochs=2))
    assert off["status"] == "finished" and off["epochs_completed"] == 2 and off["reason"] is None
