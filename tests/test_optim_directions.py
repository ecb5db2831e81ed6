"""Directions are a pure function of (seed, step): regenerated bit for bit, never stored whole."""

from __future__ import annotations

import pytest
import torch

from seedbench.optim import FPD, RBD, generate_directions, hadamard_directions, step_seed
from seedbench.optim.directions import SECOND_MOMENT


def _one_hot_step(opt: RBD, params: list[torch.nn.Parameter], j: int) -> None:
    flat = torch.zeros(sum(p.numel() for p in params), dtype=params[0].dtype)
    flat[j] = 1.0
    for p, part in zip(params, flat.split([p.numel() for p in params])):
        p.grad = part.view_as(p).clone()
    opt.step()


def _params(*shapes: tuple[int, ...], dtype: torch.dtype = torch.float32) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(*s, generator=gen, dtype=dtype)) for s in shapes]


def test_step_seeds_are_distinct_and_stable() -> None:
    seeds = {step_seed(s, t, k) for s in range(4) for t in range(50) for k in range(3)}
    assert len(seeds) == 4 * 50 * 3
    assert step_seed(7, 3) == step_seed(7, 3, 0)
    assert all(0 <= x < 2**63 for x in seeds)
    assert step_seed(0, 1) != step_seed(1, 0)  # no seed + step aliasing


@pytest.mark.parametrize("distribution", ["normal", "uniform", "bernoulli"])
def test_generate_directions_is_deterministic_and_has_the_named_distribution(distribution: str) -> None:
    a = generate_directions(9, 4, dim=3000, dims=40, distribution=distribution, chunk=7)
    b = generate_directions(9, 4, dim=3000, dims=40, distribution=distribution, chunk=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, generate_directions(9, 5, dim=3000, dims=40, distribution=distribution, chunk=7))
    n = a.numel()
    m2 = SECOND_MOMENT[distribution]
    # mean and second moment within 6 standard errors (variance of e: m2; of e^2: m4 - m2^2 <= 2)
    assert abs(a.mean().item()) < 6 * (m2 / n) ** 0.5
    assert abs(a.pow(2).mean().item() - m2) < 6 * (2.0 / n) ** 0.5
    if distribution == "uniform":
        assert a.min() >= -1 and a.max() <= 1
    if distribution == "bernoulli":
        assert set(a.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("bases", ["gaussian", "hadamard"])
@pytest.mark.parametrize("compartments", ["network", "layer"])
def test_coordinates_used_in_a_step_equal_the_regenerated_directions_bit_for_bit(bases: str, compartments: str) -> None:
    """With g = e_j the coordinates <g, phi_i> are exactly column j of the directions actually used."""
    params = _params((6, 5), (5,))
    dim = 35
    opt = RBD(params, lr=0.1, dims=8, chunk=3, bases=bases, compartments=compartments, seed=42)
    for step, j in enumerate([0, 17, 34, 30]):
        before = torch.cat([p.detach().reshape(-1) for p in params])
        _one_hot_step(opt, params, j)
        after = torch.cat([p.detach().reshape(-1) for p in params])
        phis = opt.directions(step)
        assert sum(phi.shape[1] for phi in phis) == dim
        offset = 0
        block = None
        for k, phi in enumerate(phis):
            if offset <= j < offset + phi.shape[1]:
                block = k
                assert torch.equal(opt.last_coordinates[k], phi[:, j - offset])
            else:
                assert torch.count_nonzero(opt.last_coordinates[k]) == 0
            offset += phi.shape[1]
        assert block is not None
        # and the update is sum_i c_i phi_i with those directions
        expected = torch.zeros(dim)
        offset = 0
        for phi, c in zip(phis, opt.last_coordinates):
            expected[offset : offset + phi.shape[1]] = phi.T.double().mv(c.double()).float()
            offset += phi.shape[1]
        torch.testing.assert_close(before - after, 0.1 * expected, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(opt.reconstruct(step, opt.last_coordinates), expected, rtol=1e-5, atol=1e-7)
    assert not torch.equal(opt.directions(0)[0], opt.directions(1)[0]), "RBD must draw new directions every step"


def test_module_helpers_regenerate_the_optimizers_stream() -> None:
    params = _params((50,))
    opt = RBD(params, lr=1.0, dims=7, chunk=3, seed=5)
    raw = generate_directions(5, 2, dim=50, dims=7, chunk=3)
    assert torch.equal(opt.directions(2)[0], raw * (1.0 / 50) ** 0.5)
    had = RBD(params, lr=1.0, dims=7, bases="hadamard", seed=5)
    assert torch.equal(had.directions(2)[0], hadamard_directions(5, 2, dim=50, dims=7) * (1.0 / 50) ** 0.5)


def test_same_seed_same_trajectory_and_different_seed_different_one() -> None:
    def run(seed: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        opt = RBD(model.parameters(), lr=0.5, dims=6, chunk=4, seed=seed)
        x = torch.randn(32, 4)
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_fpd_uses_the_same_directions_every_step() -> None:
    params = _params((20,))
    opt = FPD(params, lr=0.1, dims=5, chunk=2, seed=8)
    fixed = opt.fixed_directions()[0]
    for j in (3, 11, 19):
        _one_hot_step(opt, params, j)
        assert torch.equal(opt.last_coordinates[0], fixed[:, j])


def test_memory_is_bounded_by_the_chunk_not_by_d() -> None:
    params = _params((1000,))
    opt = RBD(params, lr=0.1, dims=200, chunk=16, seed=0)
    _one_hot_step(opt, params, 0)
    buffers = [t for t in vars(opt._projector).values() if isinstance(t, torch.Tensor)]
    assert buffers and max(t.numel() for t in buffers) == 16 * 1000
