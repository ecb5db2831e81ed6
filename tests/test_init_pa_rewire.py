"""PA rewiring: the invariants of docs/methods.md, "PA rewiring", its expected effect, and its sampling law."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from seedbench.init import pa_pass_, pa_rewire_, strength_stats

SHAPES = [(6, 5), (33, 17), (1, 10), (10, 1), (7, 4, 5), (8, 3, 3, 3), (4, 2, 3, 3, 3)]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def sorted_flat(t: torch.Tensor) -> torch.Tensor:
    return t.flatten().sort().values


# ------------------------------------------------------------------------------------------ invariants
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multiset_of_all_values_is_preserved_exactly(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    w = randn(*shape, dtype=dtype)
    before = w.clone()
    out = pa_rewire_(w, generator=torch.Generator().manual_seed(1))
    assert out is w and out.dtype == dtype and out.shape == before.shape
    assert torch.equal(sorted_flat(w), sorted_flat(before))


def test_it_actually_permutes() -> None:
    w = randn(32, 16)
    before = w.clone()
    pa_rewire_(w, 0)
    assert not torch.equal(w, before)


@pytest.mark.parametrize("shape", [(6, 5), (33, 17), (20, 3)])
def test_pass_one_keeps_rows_and_leaves_row_zero_alone(shape: tuple[int, int]) -> None:
    m = randn(*shape, dtype=torch.float64)
    before = m.clone()
    pa_pass_(m, 3)
    assert torch.equal(m[0], before[0])
    assert torch.equal(m.sort(dim=1).values, before.sort(dim=1).values)
    assert torch.allclose(m.sum(dim=1), before.sum(dim=1), rtol=0, atol=1e-12)
    assert not torch.equal(m, before)


@pytest.mark.parametrize("shape", [(5, 6), (17, 33), (3, 20)])
def test_pass_two_alone_keeps_columns_and_leaves_column_zero_alone(shape: tuple[int, int]) -> None:
    m = randn(*shape, dtype=torch.float64)
    before = m.clone()
    pa_pass_(m.t(), 3)  # a non-contiguous view: written back into m
    assert torch.equal(m[:, 0], before[:, 0])
    assert torch.equal(m.sort(dim=0).values, before.sort(dim=0).values)
    assert torch.allclose(m.sum(dim=0), before.sum(dim=0), rtol=0, atol=1e-12)
    assert not torch.equal(m, before)


def test_rewire_is_pass_over_rows_then_pass_over_columns() -> None:
    w = randn(8, 3, 3, 3)
    expected = w.clone().reshape(8, -1)
    gen = torch.Generator().manual_seed(11)
    pa_pass_(expected, gen)
    pa_pass_(expected.t(), gen)
    pa_rewire_(w, 11)
    assert torch.equal(w.reshape(8, -1), expected)


# ------------------------------------------------------------------------------------ reproducibility
@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 - 1])
def test_same_seed_same_output_including_zero(seed: int) -> None:
    w = randn(16, 4, 3, 3)
    a = pa_rewire_(w.clone(), seed)
    b = pa_rewire_(w.clone(), torch.Generator().manual_seed(seed))
    c = pa_rewire_(w.clone(), seed)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_different_seeds_differ() -> None:
    w = randn(16, 4, 3, 3)
    outs = [pa_rewire_(w.clone(), s) for s in range(4)]
    assert all(not torch.equal(outs[i], outs[j]) for i in range(4) for j in range(i + 1, 4))


def test_no_generator_uses_the_global_rng() -> None:
    w = randn(12, 9)
    torch.manual_seed(5)
    a = pa_rewire_(w.clone())
    torch.manual_seed(5)
    b = pa_rewire_(w.clone())
    c = pa_rewire_(w.clone())
    assert torch.equal(a, b) and not torch.equal(b, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_and_numpy_kernels_agree_bit_for_bit(dtype: torch.dtype) -> None:
    w = randn(24, 5, 3, 3, dtype=dtype)
    a = pa_rewire_(w.clone(), 9, backend="torch")
    b = pa_rewire_(w.clone(), 9, backend="numpy")
    assert torch.equal(a, b)


def test_bfloat16_runs_on_the_torch_kernel() -> None:
    w = randn(10, 7).to(torch.bfloat16)
    before = w.clone()
    pa_rewire_(w, 0)
    assert w.dtype == torch.bfloat16 and torch.equal(sorted_flat(w), sorted_flat(before))


# ---------------------------------------------------------------------------------------- tensor kinds
def test_parameter_of_a_layer_is_rewired_in_place() -> None:
    layer = nn.Conv2d(4, 6, 3)
    weight = layer.weight
    before = weight.detach().clone()
    out = pa_rewire_(layer.weight, generator=torch.Generator().manual_seed(0))
    assert out is weight and layer.weight is weight
    assert isinstance(out, nn.Parameter) and out.requires_grad and out.grad_fn is None
    assert torch.equal(sorted_flat(out.detach()), sorted_flat(before)) and not torch.equal(out.detach(), before)


def test_non_contiguous_tensor_is_written_back() -> None:
    base = randn(9, 14)
    view = base.t()  # 14 x 9, not contiguous
    expected = pa_rewire_(view.contiguous(), 4)
    pa_rewire_(view, 4)
    assert torch.equal(view, expected) and torch.equal(base.t(), expected)


@pytest.mark.parametrize("bad", [torch.zeros(5), torch.tensor(1.0)])
def test_fewer_than_two_dims_is_a_clear_error(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=">= 2 dims"):
        pa_rewire_(bad, 0)


def test_integer_tensor_is_rejected() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        pa_rewire_(torch.zeros(3, 3, dtype=torch.int64), 0)


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend"):
        pa_rewire_(randn(3, 3), 0, backend="fortran")  # type: ignore[arg-type]


@cuda
def test_generator_on_another_device_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="generator is on"):
        pa_rewire_(randn(4, 4, device="cuda"), torch.Generator())


@cuda
def test_cuda_tensor_stays_on_device_and_is_reproducible() -> None:
    w = randn(32, 8, 3, 3, device="cuda")
    before = w.clone()
    a = pa_rewire_(w, 0)
    b = pa_rewire_(before.clone(), torch.Generator(device="cuda").manual_seed(0))
    assert a is w and a.is_cuda and torch.equal(a, b)
    assert torch.equal(sorted_flat(a), sorted_flat(before))
    assert strength_stats(a)["score"] < strength_stats(before)["score"]


# ---------------------------------------------------------------------------- effect (the published numbers in docs/methods.md)
def kaiming_relu_(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu", generator=generator)


# reference: (column-sum variance before, after), (row-sum variance before, after), one fixed seed
REFERENCE_B = {
    "conv128x64x3x3-orthogonal": ((128, 64, 3, 3), nn.init.orthogonal_, (0.222, 0.040), (1.065, 0.040)),
    "linear512x512-orthogonal": ((512, 512), nn.init.orthogonal_, (1.002, 0.034), (1.002, 0.044)),
    "conv128x64x3x3-kaiming": ((128, 64, 3, 3), kaiming_relu_, (0.423, 0.057), (1.915, 0.050)),
}


@pytest.mark.parametrize("case", list(REFERENCE_B))
def test_strength_variance_drops_like_the_reference(case: str) -> None:
    """docs/methods.md ("PA rewiring"): 'roughly 5-30x, not to ~0'. The reference's own drops run from 5.5x (conv columns) to
    38x (Kaiming conv rows), so the ratio is bounded by [4, 50] and the levels, averaged over three seeds,
    must match the published single-seed ones within a factor of 1.5."""
    shape, init, (col_before_ref, col_after_ref), (row_before_ref, row_after_ref) = REFERENCE_B[case]
    seeds = range(3)
    before, after = {}, {}
    for seed in seeds:
        w = init(torch.empty(shape), generator=torch.Generator().manual_seed(seed))
        for out, stats_ in ((before, strength_stats(w)), (after, strength_stats(pa_rewire_(w, seed)))):
            for key, value in stats_.items():
                out[key] = out.get(key, 0.0) + value / len(seeds)
    for key, ref_before, ref_after in (
        ("input_strength_var", col_before_ref, col_after_ref),
        ("output_strength_var", row_before_ref, row_after_ref),
    ):
        assert 4 <= before[key] / after[key] <= 50, (key, before[key], after[key])
        assert ref_after / 1.5 <= after[key] <= ref_after * 1.5, (key, after[key], ref_after)
        assert ref_before / 1.5 <= before[key] <= ref_before * 1.5, (key, before[key], ref_before)


# -------------------------------------------------------------------------------------- sampling law
def draw_orders(first_row: list[float], n_draws: int, seed: int) -> np.ndarray:
    """Column orders chosen for row 1 of a 2-row pass: row 1 holds 0..n-1, so the column that receives
    value k is the k-th column drawn."""
    gen = torch.Generator().manual_seed(seed)
    n = len(first_row)
    orders = np.empty((n_draws, n), dtype=np.int64)
    template = torch.tensor([first_row, list(range(n))], dtype=torch.float64)
    for i in range(n_draws):
        m = template.clone()
        pa_pass_(m, gen)
        orders[i] = m[1].argsort().numpy()
    return orders


def plackett_luce_position_probs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(first drawn = j) and P(second drawn = j) under successive sampling without replacement."""
    p = p / p.sum()
    first = p.copy()
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(len(p)) if i != j) for j in range(len(p))])
    return first, second


def literal_p(first_row: list[float]) -> np.ndarray:
    s = np.array(first_row)
    return s + abs(s.min()) + 1


# one case with negative strengths, one where min(s) > 0 (where |min| and -min differ)
PL_CASES = {"negative-min": [-1.0, 0.0, 0.5, 2.0, 3.5], "positive-min": [1.0, 2.0, 3.0, 4.0, 6.0]}
N_DRAWS = 12000


@pytest.fixture(scope="module", params=list(PL_CASES))
def pl_draws(request: pytest.FixtureRequest) -> tuple[list[float], np.ndarray]:
    first_row = PL_CASES[request.param]
    return first_row, draw_orders(first_row, N_DRAWS, seed=2024)


def chi2_pvalue(observed_positions: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(observed_positions, minlength=len(probs))
    return float(stats.chisquare(counts, probs * counts.sum()).pvalue)


def test_first_and_second_positions_follow_plackett_luce(pl_draws: tuple[list[float], np.ndarray]) -> None:
    first_row, orders = pl_draws
    first, second = plackett_luce_position_probs(literal_p(first_row))
    assert chi2_pvalue(orders[:, 0], first) > 1e-3
    assert chi2_pvalue(orders[:, 1], second) > 1e-3


def test_the_goodness_of_fit_test_has_power(pl_draws: tuple[list[float], np.ndarray]) -> None:
    """The same draws reject the p of a buggy offset (-min(s) or no +1) and uniform sampling."""
    first_row, orders = pl_draws
    s = np.array(first_row)
    wrong = {"minus-min": s - s.min() + 1, "no-plus-one": s + abs(s.min()) + 1e-9, "uniform": np.ones_like(s)}
    for name, p in wrong.items():
        if np.allclose(p / p.sum(), literal_p(first_row) / literal_p(first_row).sum()):
            continue  # with negative strengths |min| == -min: no difference to detect
        first, _ = plackett_luce_position_probs(p)
        assert chi2_pvalue(orders[:, 0], first) < 1e-6, name


def test_whole_permutation_law_on_three_columns() -> None:
    first_row = [2.0, -0.5, 1.0]
    p = literal_p(first_row)
    p = p / p.sum()
    orders = draw_orders(first_row, 6000, seed=7)
    perms = list(permutations(range(3)))
    index = {perm: k for k, perm in enumerate(perms)}
    observed = np.bincount([index[tuple(o)] for o in orders], minlength=6)
    expected = np.array([p[a] * p[b] / (1 - p[a]) for a, b, _ in perms]) * len(orders)
    assert math.isclose(expected.sum(), len(orders))
    assert stats.chisquare(observed, expected).pvalue > 1e-3
