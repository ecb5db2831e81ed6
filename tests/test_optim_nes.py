"""NES: rank utilities, in-place perturbations (antithetic ones really negated) and the update formula."""

from __future__ import annotations

import math

import pytest
import torch

from seedbench.optim import NES, rank_utilities


def test_utilities_sum_to_zero_and_follow_the_ranks() -> None:
    u = rank_utilities(torch.tensor([3.0, 1.0, 2.0, 5.0]))
    torch.testing.assert_close(u, torch.tensor([-1 / 6, 0.5, 1 / 6, -0.5], dtype=torch.float64))
    losses = torch.randn(250, generator=torch.Generator().manual_seed(0))
    u = rank_utilities(losses)
    assert abs(u.sum().item()) < 1e-12
    assert u[losses.argmin()] == 0.5 and u[losses.argmax()] == -0.5
    # strictly decreasing in the loss, equally spaced by 1/(d-1)
    ordered = u[torch.argsort(losses)]
    torch.testing.assert_close(ordered.diff(), torch.full((249,), -1 / 249, dtype=torch.float64))


def test_utilities_count_nan_as_the_worst_loss_and_break_ties_by_position() -> None:
    u = rank_utilities(torch.tensor([1.0, float("nan"), 0.0]))
    assert u.tolist() == [0.0, -0.5, 0.5]
    assert rank_utilities(torch.tensor([2.0, 2.0])).tolist() == [0.5, -0.5]
    with pytest.raises(ValueError):
        rank_utilities(torch.tensor([1.0]))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(5, 3).double()  # D = 18


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _spying_closure(model: torch.nn.Module, seen: list[torch.Tensor]):
    x = torch.randn(16, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def closure() -> torch.Tensor:
        seen.append(_flat(model))
        return model(x).pow(2).mean()

    return closure


@pytest.mark.parametrize("normalization", ["auto", "none"])
def test_members_are_theta_plus_sigma_eps_and_the_update_matches_the_formula(normalization: str) -> None:
    model = _model()
    theta = _flat(model)
    seen: list[torch.Tensor] = []
    opt = NES(model.parameters(), lr=0.3, dims=10, sigma=0.05, normalization=normalization, chunk=3, seed=4)
    opt.step(_spying_closure(model, seen))
    assert len(seen) == 10, "one closure call per population member"
    eps = opt.noise(0)
    scale = 1 / math.sqrt(18) if normalization == "auto" else 1.0
    torch.testing.assert_close(eps.pow(2).mean().sqrt(), torch.tensor(scale, dtype=torch.float64), rtol=0.35, atol=0)
    torch.testing.assert_close(torch.stack(seen) - theta, 0.05 * eps)
    u = rank_utilities(opt.last_losses)
    expected = theta + 0.3 * (u.unsqueeze(1) * eps).sum(0) / (0.05 * 10)
    torch.testing.assert_close(_flat(model), expected)


def test_antithetic_members_really_negate_the_noise() -> None:
    model = _model()
    theta = _flat(model)
    seen: list[torch.Tensor] = []
    opt = NES(model.parameters(), lr=0.1, dims=8, sigma=0.01, antithetic=True, seed=2)
    opt.step(_spying_closure(model, seen))
    perturb = torch.stack(seen) - theta
    assert perturb.shape == (8, 18) and opt.noise(0).shape == (4, 18)
    assert (perturb.norm(dim=1) > 1e-4).all()
    torch.testing.assert_close(perturb[0::2], -perturb[1::2], rtol=0, atol=1e-15)
    torch.testing.assert_close(perturb[0::2], 0.01 * opt.noise(0))
    # the antithetic update is sum_k (u_2k - u_2k+1) eps_k
    u = rank_utilities(opt.last_losses)
    expected = theta + 0.1 * ((u[0::2] - u[1::2]).unsqueeze(1) * opt.noise(0)).sum(0) / (0.01 * 8)
    torch.testing.assert_close(_flat(model), expected)


def test_plain_members_are_not_paired_so_the_antithetic_check_can_fail() -> None:
    model = _model()
    theta = _flat(model)
    seen: list[torch.Tensor] = []
    NES(model.parameters(), lr=0.1, dims=8, sigma=0.01, seed=2).step(_spying_closure(model, seen))
    perturb = torch.stack(seen) - theta
    assert (perturb[0::2] + perturb[1::2]).norm() > 0.1 * perturb.norm()


def test_parameters_are_restored_even_if_the_closure_raises() -> None:
    model = _model()
    theta = _flat(model)
    calls = []

    def closure() -> float:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return 1.0

    opt = NES(model.parameters(), lr=0.1, dims=6, seed=0)
    with pytest.raises(RuntimeError, match="boom"):
        opt.step(closure)
    assert torch.equal(_flat(model), theta)


def test_fitness_diagnostics_and_optional_cosine() -> None:
    model = _model()
    losses = iter([4.0, 1.0, 3.0, 2.0] * 2)
    opt = NES(model.parameters(), lr=0.1, dims=4, seed=0)
    opt.step(lambda: next(losses))
    opt.step(lambda: next(losses))
    diag = opt.pop_diagnostics()
    assert diag["nes_loss_mean"] == pytest.approx(2.5)
    assert diag["nes_loss_min"] == 1.0 and diag["nes_loss_max"] == 4.0
    assert diag["nes_loss_std"] == pytest.approx(torch.tensor([4.0, 1.0, 3.0, 2.0]).std().item())
    assert "cosine" not in diag, "no gradients -> no cosine"
    assert opt.pop_diagnostics() == {}
    x = torch.randn(8, 5, dtype=torch.float64)
    model(x).pow(2).mean().backward()
    opt.step(lambda: model(x).pow(2).mean())
    assert -1.0 <= opt.pop_diagnostics()["cosine"] <= 1.0


def test_step_requires_a_closure_returning_a_scalar() -> None:
    model = _model()
    opt = NES(model.parameters(), lr=0.1, dims=4, seed=0)
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="scalar"):
        opt.step(lambda: torch.ones(3))
    assert NES.gradient_free is True
