"""FPD trains theta = theta0 + P c: the displacement never leaves span(P)."""

from __future__ import annotations

import pytest
import torch

from seedbench.optim import FPD, RBD


def _problem() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    x = torch.randn(64, 6, dtype=torch.float64)
    y = torch.randn(64, 2, dtype=torch.float64)
    return model, x, y


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        (model(x) - y).pow(2).mean().backward()
        opt.step()


def _residual(p: torch.Tensor, delta: torch.Tensor) -> float:
    """Relative least-squares residual of delta against the columns of P^T (the span of the directions)."""
    coef = torch.linalg.lstsq(p.T, delta.unsqueeze(1), driver="gelsd").solution  # SVD: P may be rank-deficient
    return float((p.T @ coef).squeeze(1).sub(delta).norm() / delta.norm())


@pytest.mark.parametrize("bases", ["gaussian", "hadamard"])
def test_fpd_stays_in_its_subspace(bases: str) -> None:
    model, x, y = _problem()
    theta0 = _flat(model)
    opt = FPD(model.parameters(), lr=0.5, dims=4, bases=bases, seed=3)
    _train(model, opt, x, y, 40)
    delta = _flat(model) - theta0
    assert delta.norm() > 1e-3, "FPD did not move"
    p = opt.fixed_directions()[0]
    assert _residual(p, delta) < 1e-10
    torch.testing.assert_close(opt.theta0, theta0)
    # theta - theta0 = P c exactly with the coordinates the optimizer kept
    torch.testing.assert_close(p.T @ opt.coordinates[0], delta)


def test_rbd_leaves_any_fixed_subspace_so_the_residual_test_can_fail() -> None:
    model, x, y = _problem()
    theta0 = _flat(model)
    opt = RBD(model.parameters(), lr=0.5, dims=4, seed=3)
    _train(model, opt, x, y, 40)
    assert _residual(opt.directions(0)[0], _flat(model) - theta0) > 0.1


def test_layer_compartments_stay_in_the_block_subspace() -> None:
    model, x, y = _problem()
    theta0 = _flat(model)
    opt = FPD(model.parameters(), lr=0.5, dims=3, compartments="layer", seed=1)
    _train(model, opt, x, y, 20)
    delta = _flat(model) - theta0
    blocks = opt.fixed_directions()
    p = torch.block_diag(*blocks)
    assert p.shape == (3 * len(blocks), delta.numel())
    assert _residual(p, delta) < 1e-10


def test_rebuild_parameters_restores_theta0_plus_pc() -> None:
    model, x, y = _problem()
    opt = FPD(model.parameters(), lr=0.5, dims=4, seed=3)
    _train(model, opt, x, y, 10)
    trained = _flat(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    opt.rebuild_parameters()
    torch.testing.assert_close(_flat(model), trained)


def test_fpd_forward_pass_sees_theta0_plus_p_c_not_a_lagged_point() -> None:
    """The reference evaluated theta + P c_{t-1}; here the model after step t is exactly theta0 + P c_t."""
    model, x, y = _problem()
    theta0 = _flat(model)
    opt = FPD(model.parameters(), lr=0.5, dims=4, seed=3)
    p = opt.fixed_directions()[0]
    for _ in range(3):
        _train(model, opt, x, y, 1)
        torch.testing.assert_close(_flat(model), theta0 + p.T @ opt.coordinates[0])


def test_fpd_rejects_different_learning_rates_per_group() -> None:
    model, x, y = _problem()
    first, second = list(model.parameters())[:2], list(model.parameters())[2:]
    opt = FPD([{"params": first}, {"params": second, "lr": 0.1}], lr=0.5, dims=3, seed=0)
    with pytest.raises(ValueError, match="one learning rate"):
        _train(model, opt, x, y, 1)


@pytest.mark.parametrize(
    "options",
    [
        {"distribution": "normal"},
        {"distribution": "uniform", "compartments": "layer", "chunk": 3},
        {"distribution": "bernoulli", "normalization": "unbiased"},
    ],
    ids=["normal", "uniform-layer-chunked", "bernoulli-unbiased"],
)
def test_kept_directions_train_bitwise_like_redrawn_ones(options: dict) -> None:
    """Keeping P is a speed-up only: every step, the point and the coordinates equal the redrawn path's."""
    runs = []
    for keep in (False, True):
        model, x, y = _problem()
        opt = FPD(model.parameters(), lr=0.5, dims=7, seed=11, keep_directions=keep, **options)
        assert opt._projector.keep is keep
        _train(model, opt, x, y, steps=6)
        runs.append((_flat(model), [c.clone() for c in opt.coordinates]))
        opt.rebuild_parameters()
        runs[-1] += (_flat(model),)
    (p_redrawn, c_redrawn, r_redrawn), (p_kept, c_kept, r_kept) = runs
    assert torch.equal(p_redrawn, p_kept)
    assert all(torch.equal(a, b) for a, b in zip(c_redrawn, c_kept))
    assert torch.equal(r_redrawn, r_kept)


def test_directions_are_kept_by_default_only_when_they_fit() -> None:
    model, x, y = _problem()
    small = FPD(model.parameters(), lr=0.5, dims=4, seed=0)
    assert small._projector.keep  # 4 x 47 doubles
    _train(model, small, x, y, steps=2)
    assert len(small._projector._kept) == 1  # drawn once, for the one compartment, however many steps
    tight = FPD(model.parameters(), lr=0.5, dims=4, seed=0)
    tight.KEEP_BYTES = 4 * 47 * 8 - 1
    tight._projector_cache = None
    assert not tight._projector.keep
    hadamard = FPD(model.parameters(), lr=0.5, dims=4, seed=0, bases="hadamard", keep_directions=True)
    assert not hadamard._projector.keep  # Hadamard rows are a transform, nothing to redraw
    assert not RBD(model.parameters(), lr=0.5, dims=4, seed=0)._projector.keep  # new directions every step
