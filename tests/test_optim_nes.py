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
def test_members_are_theta_plus_sigma_times_raw_noise_and_the_update_matches_the_formula(normalization: str) -> None:
    """Members: theta + sigma * e with raw e; update: lr * sum_i u_i (s * e_i) / (sigma d), s = 1/sqrt(D) or 1."""
    model = _model()
    theta = _flat(model)
    seen: list[torch.Tensor] = []
    opt = NES(model.parameters(), lr=0.3, dims=10, sigma=0.05, normalization=normalization, chunk=3, seed=4)
    opt.step(_spying_closure(model, seen))
    assert len(seen) == 10, "one closure call per population member"
    e = opt.noise(0)
    assert e.shape == (10, 18)
    torch.testing.assert_close(torch.stack(seen) - theta, 0.05 * e)  # same perturbation under either normalisation
    scale = 1 / math.sqrt(18) if normalization == "auto" else 1.0
    assert opt.update_scale == pytest.approx(scale)
    u = rank_utilities(opt.last_losses)
    expected = theta + 0.3 * (u.unsqueeze(1) * scale * e).sum(0) / (0.05 * 10)
    torch.testing.assert_close(_flat(model), expected)


def test_perturbations_are_raw_noise_at_distance_sigma_sqrt_d() -> None:
    """||theta_i - theta|| = sigma * ||e_i|| with ||e_i||^2 ~ chi^2_D: mean D, variance 2D.

    So ||e_i|| / sqrt(D) = 1 +- 1/sqrt(2D) per member (delta method), and the population mean of
    ||e_i||^2 / D has standard error sqrt(2 / (D m)). Normalising the perturbation by 1/sqrt(D) (the old
    bug) would put every member sqrt(D) ~ 45 times closer, far outside both bounds.
    """
    torch.manual_seed(0)
    model = torch.nn.Linear(100, 20).double()  # D = 2020
    dim, members, sigma = 2020, 40, 0.01
    theta = _flat(model)
    seen: list[torch.Tensor] = []
    x = torch.randn(4, 100, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def closure() -> torch.Tensor:
        seen.append(_flat(model))
        return model(x).pow(2).mean()

    NES(model.parameters(), lr=0.1, dims=members, sigma=sigma, seed=3).step(closure)
    dist = (torch.stack(seen) - theta).norm(dim=1) / (sigma * math.sqrt(dim))
    assert ((dist - 1).abs() < 6 / math.sqrt(2 * dim)).all(), dist
    mean_sq = dist.pow(2).mean().item()
    assert abs(mean_sq - 1) < 4 * math.sqrt(2 / (dim * members)), mean_sq


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
    # the antithetic update is sum_k (u_2k - u_2k+1) eps_k, eps = e / sqrt(D)
    u = rank_utilities(opt.last_losses)
    eps = opt.noise(0) / math.sqrt(18)
    expected = theta + 0.1 * ((u[0::2] - u[1::2]).unsqueeze(1) * eps).sum(0) / (0.01 * 8)
    torch.testing.assert_close(_flat(model), expected)


@pytest.mark.parametrize("antithetic", [False, True])
def test_expected_update_descends_a_noisy_smooth_problem(antithetic: bool) -> None:
    """E[update] is aligned with -grad: mean cosine over independent steps exceeds 3 standard errors.

    f(theta) = lam/2 ||theta - theta*||^2 at a point where ||grad|| = 1, and every evaluation adds
    N(0, tau^2) noise, standing in for the minibatch. With raw perturbations the members' losses differ by
    sigma * (e . grad) ~ N(0, sigma^2) = 0.01 std, against noise tau = 0.003 (and a curvature spread
    lam sigma^2 sqrt(2D)/2 ~ 7e-4): the ranks carry the gradient. Had the perturbation been divided by
    sqrt(D) too (the old bug), the signal would be 1e-4 against the same noise and the mean cosine would
    be indistinguishable from 0 at this sample size.
    """
    dim, members, sigma, lam, tau, steps = 10_000, 50, 0.01, 0.1, 0.003, 30
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(dim, dtype=torch.float64, generator=gen)
    offset = torch.randn(dim, dtype=torch.float64, generator=gen)
    start = target + offset / (lam * offset.norm())  # grad = lam (start - target), a unit vector
    grad = lam * (start - target)
    param = torch.nn.Parameter(start.clone())
    noise = torch.Generator().manual_seed(1)

    def closure() -> torch.Tensor:
        clean = 0.5 * lam * (param.detach() - target).pow(2).sum()
        return clean + tau * torch.randn((), dtype=torch.float64, generator=noise)

    cosines = []
    for seed in range(steps):  # independent steps from the same point
        with torch.no_grad():
            param.copy_(start)
        NES([param], lr=0.1, dims=members, sigma=sigma, antithetic=antithetic, seed=seed).step(closure)
        update = param.detach() - start
        cosines.append(torch.nn.functional.cosine_similarity(update, -grad, dim=0).item())
    c = torch.tensor(cosines)
    assert c.mean() - 3 * c.std() / math.sqrt(steps) > 0, (c.mean().item(), c.std().item())


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
