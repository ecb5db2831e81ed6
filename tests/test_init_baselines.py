"""Baseline initializers (docs/methods.md, "Initializers"), the generator convention, and strength metrics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seedbench.init import INITIALIZERS, default_bias_, get_initializer, resolve_generator, strength_stats
from seedbench.init.baselines import RANDOM_STD

EXPECTED_NAMES = {
    "zeros",
    "normal",
    "uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "xavier_normal",
    "xavier_uniform",
    "orthogonal",
    "default",
}


def test_registry_names() -> None:
    assert set(INITIALIZERS) == EXPECTED_NAMES
    assert all(get_initializer(name) is INITIALIZERS[name] for name in EXPECTED_NAMES)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        get_initializer("he_normal")
    assert "he_normal" in str(err.value)
    assert all(name in str(err.value) for name in EXPECTED_NAMES)


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_in_place_and_reproducible_from_a_seed(name: str) -> None:
    fn = get_initializer(name)
    w = torch.full((24, 6, 3, 3), 7.0)
    out = fn(w, 0)
    assert out is w and out.shape == (24, 6, 3, 3)
    again = fn(torch.empty(24, 6, 3, 3), torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    if name != "zeros":
        assert not torch.equal(out, fn(torch.empty(24, 6, 3, 3), 1))
    else:
        assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize(
    "name, std",
    [
        ("normal", RANDOM_STD),
        ("uniform", RANDOM_STD),
        ("kaiming_normal", math.sqrt(2 / 576)),  # fan_in of 128x64x3x3 is 576
        ("kaiming_uniform", math.sqrt(2 / 576)),
        ("xavier_normal", math.sqrt(2 / (576 + 1152))),
        ("xavier_uniform", math.sqrt(2 / (576 + 1152))),
        ("default", 1 / math.sqrt(576) / math.sqrt(3)),  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    ],
)
def test_scales_on_a_conv_weight(name: str, std: float) -> None:
    w = get_initializer(name)(torch.empty(128, 64, 3, 3), 0)
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert abs(w.mean().item()) < 0.05 * std


def test_default_matches_the_framework_reset_bounds() -> None:
    layer = nn.Conv2d(16, 8, 3)
    bound = 1 / math.sqrt(16 * 9)
    get_initializer("default")(layer.weight, 0)
    default_bias_(layer.bias, layer.weight, 0)
    assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    assert layer.weight.abs().max() > 0.9 * bound


def test_resolve_generator() -> None:
    assert resolve_generator(None, "cpu") is None
    gen = torch.Generator()
    assert resolve_generator(gen, "cpu") is gen
    seeded = resolve_generator(0, "cpu")
    assert isinstance(seeded, torch.Generator) and seeded.initial_seed() == 0
    with pytest.raises(ValueError, match="generator is on cpu"):
        resolve_generator(torch.Generator(), "cuda")
    with pytest.raises(TypeError):
        resolve_generator(True, "cpu")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        resolve_generator(1.5, "cpu")  # type: ignore[arg-type]


def test_strength_stats_are_signed_sums() -> None:
    w = torch.tensor([[1.0, -1.0, 2.0], [3.0, 1.0, -4.0]])
    stats = strength_stats(w)
    # columns: 4, 0, -2 ; rows: 2, 0
    assert stats["input_strength_var"] == pytest.approx(torch.tensor([4.0, 0.0, -2.0]).var().item())
    assert stats["output_strength_var"] == pytest.approx(2.0)
    assert stats["input_strength_max_abs"] == 4.0 and stats["output_strength_max_abs"] == 2.0
    assert stats["score"] == pytest.approx((stats["input_strength_var"] + 2.0) / 2)


def test_strength_stats_conv_columns_are_in_channel_times_kernel() -> None:
    w = torch.ones(4, 2, 3, 3)
    w[0] = -1.0
    stats = strength_stats(w)
    assert stats["input_strength_max_abs"] == 2.0  # 18 columns each summing 3 * 1 + (-1)
    assert stats["output_strength_max_abs"] == 18.0


def test_strength_stats_edge_cases() -> None:
    assert strength_stats(torch.ones(1, 5))["output_strength_var"] == 0.0  # one neuron: nothing to vary
    with pytest.raises(ValueError, match=">= 2 dims"):
        strength_stats(torch.ones(5))
