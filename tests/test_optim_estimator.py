"""E[g_hat] is proportional to g with the predicted factor, checked by z-scores against the estimator's own variance.

One draw of g_hat_j = s^2 sum_{i<d} e_ij <e_i, g> is a sum of d i.i.d. terms with
    mean      m2 g_j
    variance  m2^2 (|g|^2 - g_j^2) + (m4 - m2^2) g_j^2      (m2, m4: 2nd and 4th moment of an entry)
so the mean of N draws has standard error s^2 sqrt(d var_j / N). Every component must lie within a
Bonferroni bound (family-wise false-alarm rate ALPHA over the D components), and the same statistic must
reject a 15 % wrong scale factor: the test has the power to fail.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm

from seedbench.optim import RBD
from seedbench.optim.directions import FOURTH_MOMENT, SECOND_MOMENT

ALPHA = 1e-4
DRAWS = 3000
WRONG_SCALE = 1.15


def _gradient(dim: int) -> torch.Tensor:
    g = torch.linspace(-1.0, 1.0, dim, dtype=torch.float64) ** 3
    g[dim // 3] = 1.5  # one dominant coordinate, so an estimator that drifts towards it would show
    return g / g.norm()


def _samples(opt: RBD, params: list[torch.nn.Parameter], g: torch.Tensor, draws: int) -> torch.Tensor:
    """g_hat of `draws` consecutive steps (lr = 1, parameters reset to 0 before each step)."""
    sizes = [p.numel() for p in params]
    out = torch.empty(draws, g.numel(), dtype=torch.float64)
    for p, part in zip(params, g.split(sizes)):
        p.grad = part.view_as(p).clone()
    for t in range(draws):
        with torch.no_grad():
            for p in params:
                p.zero_()
        opt.step()
        out[t] = -torch.cat([p.detach().reshape(-1) for p in params])
    return out


def _z_bound(dim: int) -> float:
    return float(norm.isf(ALPHA / (2 * dim)))


def _params(sizes: list[int]) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(n, dtype=torch.float64)) for n in sizes]


def _theory(g: torch.Tensor, distribution: str, dims: int, coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of one draw of g_hat for i.i.d. bases."""
    m2, m4 = SECOND_MOMENT[distribution], FOURTH_MOMENT[distribution]
    var_term = m2**2 * (g.pow(2).sum() - g.pow(2)) + (m4 - m2**2) * g.pow(2)
    return coef * dims * m2 * g, coef * torch.sqrt(dims * var_term)


@pytest.mark.parametrize("distribution", ["normal", "uniform", "bernoulli"])
@pytest.mark.parametrize("normalization", ["auto", "unbiased"])
def test_expected_update_is_the_predicted_multiple_of_the_gradient(distribution: str, normalization: str) -> None:
    dim, dims = 9, 4
    g = _gradient(dim)
    params = _params([dim])
    opt = RBD(params, lr=1.0, dims=dims, distribution=distribution, normalization=normalization, chunk=3, seed=11)
    samples = _samples(opt, params, g, DRAWS)
    # auto: entries / sqrt(D) -> g_hat = E E^T g / D, E[g_hat] = (d m2 / D) g;  unbiased: E[g_hat] = g
    coef = 1.0 / dim if normalization == "auto" else 1.0 / (dims * SECOND_MOMENT[distribution])
    mean, sd = _theory(g, distribution, dims, coef)
    se = sd / math.sqrt(DRAWS)
    z = (samples.mean(0) - mean) / se
    bound = _z_bound(dim)
    assert z.abs().max() < bound, f"max |z| = {z.abs().max():.2f} >= {bound:.2f}"
    z_wrong = (samples.mean(0) - WRONG_SCALE * mean) / se
    assert z_wrong.abs().max() > bound, "the test cannot tell a 15% wrong scale from the right one"
    if normalization == "unbiased":
        torch.testing.assert_close(mean, g)


@pytest.mark.parametrize("normalization", ["auto", "unbiased"])
def test_layer_compartments_keep_the_expected_scale_per_layer(normalization: str) -> None:
    sizes, dims = [5, 7], 3
    dim = sum(sizes)
    g = _gradient(dim)
    params = _params(sizes)
    opt = RBD(params, lr=1.0, dims=dims, normalization=normalization, compartments="layer", seed=5)
    samples = _samples(opt, params, g, DRAWS)
    means, sds = [], []
    for gk in g.split(sizes):
        # each layer is its own block, but "auto" still divides by the WHOLE network's D
        coef = 1.0 / dim if normalization == "auto" else 1.0 / dims
        m, s = _theory(gk, "normal", dims, coef)
        means.append(m)
        sds.append(s)
    mean, se = torch.cat(means), torch.cat(sds) / math.sqrt(DRAWS)
    z = (samples.mean(0) - mean) / se
    assert z.abs().max() < _z_bound(dim)
    assert ((samples.mean(0) - WRONG_SCALE * mean) / se).abs().max() > _z_bound(dim)


@pytest.mark.parametrize("normalization", ["auto", "unbiased"])
@pytest.mark.parametrize("dim", [12, 16])
def test_hadamard_bases_have_the_same_expected_update_as_gaussian_ones(normalization: str, dim: int) -> None:
    """No closed-form variance here (rows without replacement, padding): the standard error is estimated."""
    dims = 5
    g = _gradient(dim)
    params = _params([dim])
    opt = RBD(params, lr=1.0, dims=dims, normalization=normalization, bases="hadamard", seed=3)
    samples = _samples(opt, params, g, DRAWS)
    expected = g * dims / dim if normalization == "auto" else g
    se = samples.std(0) / math.sqrt(DRAWS)
    z = (samples.mean(0) - expected) / se
    assert z.abs().max() < _z_bound(dim)
    assert ((samples.mean(0) - WRONG_SCALE * expected) / se).abs().max() > _z_bound(dim)


def test_hadamard_with_every_row_returns_the_gradient_itself() -> None:
    """d = D = 2^k rows span the space and are orthogonal: the unbiased update is exactly g, cosine 1."""
    dim = 16
    g = _gradient(dim)
    params = _params([dim])
    opt = RBD(params, lr=1.0, dims=dim, normalization="unbiased", bases="hadamard", seed=2)
    samples = _samples(opt, params, g, 3)
    for row in samples:
        torch.testing.assert_close(row, g)
    assert opt.pop_diagnostics()["cosine"] == pytest.approx(1.0, abs=1e-12)
    # i.i.d. Gaussian bases with the same d are not orthogonal and do not reproduce g
    gauss = RBD(params, lr=1.0, dims=dim, normalization="unbiased", seed=2)
    assert (_samples(gauss, params, g, 1)[0] - g).norm() > 0.1
