"""Every method actually trains: a small MLP on a fixed synthetic problem ends with a much lower loss."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from seedbench.optim import FPD, NES, RBD


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=gen)
    teacher = torch.randn(8, 3, generator=gen)
    return x, (x @ teacher).argmax(1)


def _model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))  # D = 195


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def _batches(n: int, size: int) -> Callable[[], torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    return lambda: torch.randint(0, n, (size,), generator=gen)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda ps: RBD(ps, lr=2.0, dims=20, seed=0), id="rbd-gaussian"),
        pytest.param(lambda ps: RBD(ps, lr=2.0, dims=20, bases="hadamard", seed=0), id="rbd-hadamard"),
        pytest.param(lambda ps: RBD(ps, lr=0.2, dims=20, normalization="unbiased", compartments="layer", seed=0), id="rbd-layer-unbiased"),
        pytest.param(lambda ps: FPD(ps, lr=2.0, dims=40, seed=0), id="fpd"),
    ],
)
def test_gradient_methods_reduce_the_loss(make: Callable) -> None:
    x, y = _data()
    model = _model()
    opt = make(model.parameters())
    before = _loss(model, x, y).item()
    batch = _batches(len(x), 32)
    for _ in range(300):
        idx = batch()
        opt.zero_grad()
        _loss(model, x[idx], y[idx]).backward()
        opt.step()
    after = _loss(model, x, y).item()
    assert after < 0.6 * before, (before, after)
    assert opt.pop_diagnostics()["cosine"] > 0.05


@pytest.mark.parametrize("antithetic", [False, True])
def test_nes_reduces_the_loss(antithetic: bool) -> None:
    """NES is the weak baseline of the study (member ranks are noisy): a linear model keeps it fast."""
    x, y = _data()
    torch.manual_seed(1)
    model = nn.Linear(8, 3)  # D = 27
    opt = NES(model.parameters(), lr=0.1, dims=20, sigma=0.1, antithetic=antithetic, seed=0)
    before = _loss(model, x, y).item()
    batch = _batches(len(x), 64)

    @torch.no_grad()
    def closure() -> torch.Tensor:
        idx = batch()  # every member sees its own minibatch
        return _loss(model, x[idx], y[idx])

    for _ in range(100):
        opt.step(closure)
    after = _loss(model, x, y).item()
    assert after < 0.75 * before, (before, after)
    assert opt.pop_diagnostics()["nes_loss_mean"] < before
