"""Stabilized strength (docs/methods.md, "Stabilized strength"): best-of-K draws, always in the tensor's original shape."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from seedbench.init import get_initializer, stabilize_strength_, strength_score


def orthogonal_draws(shape: tuple[int, ...], tries: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [nn.init.orthogonal_(torch.empty(shape), generator=gen) for _ in range(tries)]


@pytest.mark.parametrize("seed", [0, 3])
def test_keeps_exactly_the_lowest_score_draw(seed: int) -> None:
    shape = (32, 8, 3, 3)
    draws = orthogonal_draws(shape, 12, seed)
    scores = [float(strength_score(d)) for d in draws]
    w = torch.empty(shape)
    out = stabilize_strength_(w, nn.init.orthogonal_, tries=12, generator=seed)
    assert out is w
    assert torch.equal(w, draws[scores.index(min(scores))])
    assert float(strength_score(w)) <= scores[0]  # never worse than the single draw it replaces


@pytest.mark.parametrize("name", ["kaiming_normal", "orthogonal"])
def test_lowers_the_score_versus_single_draws_on_average(name: str) -> None:
    # a non-square layer: a square orthogonal matrix has nearly fixed strength variance (its row sums
    # have norm exactly sqrt(n)), so best-of-K has little room there
    init = get_initializer(name)
    single = [float(strength_score(init(torch.empty(32, 16), s))) for s in range(8)]
    stabilized = [float(strength_score(stabilize_strength_(torch.empty(32, 16), name, tries=20, generator=s))) for s in range(8)]
    assert sum(stabilized) < 0.8 * sum(single)


def test_every_try_sees_the_original_shape() -> None:
    seen: list[tuple[int, ...]] = []

    def recording_init_(t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        seen.append(tuple(t.shape))
        return nn.init.normal_(t, generator=generator)

    stabilize_strength_(torch.empty(16, 4, 3, 3), recording_init_, tries=5, generator=0)
    assert seen == [(16, 4, 3, 3)] * 5


@pytest.mark.parametrize(
    "init_fn, expected_std",
    [
        # conv 128x64x3x3: fan_in = 64*9 = 576, fan_out = 128*9 = 1152; a 2-D view would give fan_out = 128
        (functools.partial(nn.init.kaiming_normal_, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 1152)),
        (nn.init.xavier_normal_, math.sqrt(2 / (576 + 1152))),
    ],
)
def test_conv_fans_are_those_of_the_4d_layer(init_fn, expected_std: float) -> None:
    w = stabilize_strength_(torch.empty(128, 64, 3, 3), init_fn, tries=4, generator=1)
    assert w.std().item() == pytest.approx(expected_std, rel=0.03)


def test_initializer_without_generator_is_still_reproducible_and_leaves_global_rng_alone() -> None:
    def plain_init_(t: torch.Tensor) -> torch.Tensor:
        return nn.init.orthogonal_(t)

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = stabilize_strength_(torch.empty(20, 10), plain_init_, tries=6, generator=4)
    assert torch.equal(torch.get_rng_state(), state)
    b = stabilize_strength_(torch.empty(20, 10), plain_init_, tries=6, generator=4)
    c = stabilize_strength_(torch.empty(20, 10), plain_init_, tries=6, generator=5)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_same_seed_same_result_and_names_resolve() -> None:
    a = stabilize_strength_(torch.empty(16, 16), "kaiming_normal", tries=5, generator=0)
    b = stabilize_strength_(torch.empty(16, 16), "kaiming_normal", tries=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_parameter_is_filled_in_place() -> None:
    layer = nn.Linear(8, 6)
    weight = layer.weight
    out = stabilize_strength_(layer.weight, "orthogonal", tries=3, generator=0)
    assert out is weight and out.requires_grad and out.grad_fn is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=">= 2 dims"):
        stabilize_strength_(torch.empty(5), "orthogonal")
    with pytest.raises(ValueError, match="tries"):
        stabilize_strength_(torch.empty(5, 5), "orthogonal", tries=0)
    with pytest.raises(ValueError, match="unknown initializer"):
        stabilize_strength_(torch.empty(5, 5), "orthogonall")
