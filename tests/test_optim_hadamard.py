"""The fast Walsh-Hadamard transform and the structured bases built on it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from seedbench.optim import fwht, hadamard_directions, next_pow2
from seedbench.optim.hadamard import hadamard_project, random_signs, sample_rows


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32, 64, 128, 1024])
def test_fwht_matches_scipy_hadamard(n: int) -> None:
    x = torch.randn(3, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    expected = x @ torch.from_numpy(scipy.linalg.hadamard(n).astype(np.float64))
    torch.testing.assert_close(fwht(x), expected)
    torch.testing.assert_close(fwht(x[0]), expected[0])


def test_fwht_is_its_own_inverse_up_to_n_and_leaves_its_input_alone() -> None:
    x = torch.randn(4096, dtype=torch.float64)
    copy = x.clone()
    torch.testing.assert_close(fwht(fwht(x)) / 4096, x)
    assert torch.equal(x, copy)


@pytest.mark.parametrize("n", [0, 3, 12])
def test_fwht_rejects_lengths_that_are_not_powers_of_two(n: int) -> None:
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.zeros(n))


def test_next_pow2() -> None:
    assert [next_pow2(n) for n in (1, 2, 3, 5, 101_770)] == [1, 2, 4, 8, 131_072]


def test_directions_are_signed_hadamard_rows_orthogonal_within_a_step() -> None:
    dim, dims = 64, 20
    phi = hadamard_directions(3, 7, dim=dim, dims=dims, dtype=torch.float64)
    assert set(phi.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(phi @ phi.T, dim * torch.eye(dims, dtype=torch.float64))
    # every row is a row of H times one shared sign vector
    h = torch.from_numpy(scipy.linalg.hadamard(dim).astype(np.float64))
    signs = phi[0] * h[(h * phi[0]).sum(1).abs().argmax()]
    rows = (phi * signs) @ h.T / dim
    assert torch.equal(rows.abs().sum(1), torch.ones(dims, dtype=torch.float64))
    assert not torch.equal(phi, hadamard_directions(3, 8, dim=dim, dims=dims, dtype=torch.float64))


def test_padded_directions_are_the_truncated_rows_and_project_matches_explicit_matrix() -> None:
    dim, dims = 100, 30
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(dim, dtype=torch.float64, generator=gen)
    signs = random_signs(gen, 128, torch.device("cpu"), torch.float64)
    rows = sample_rows(gen, 128, dims, torch.device("cpu"))
    full = torch.from_numpy(scipy.linalg.hadamard(128).astype(np.float64))[rows] * signs
    e = full[:, :dim]
    out = torch.empty(dim, dtype=torch.float64)
    coords = hadamard_project(g, signs, rows, out)
    torch.testing.assert_close(coords, e @ g)
    torch.testing.assert_close(out, e.T @ (e @ g))


def test_sampled_rows_are_distinct_and_in_range() -> None:
    gen = torch.Generator().manual_seed(1)
    for n, k in [(8, 8), (131072, 250), (16, 1)]:
        rows = sample_rows(gen, n, k, torch.device("cpu"))
        assert rows.numel() == k and rows.unique().numel() == k
        assert 0 <= int(rows.min()) and int(rows.max()) < n
    with pytest.raises(ValueError):
        sample_rows(gen, 4, 5, torch.device("cpu"))


def test_random_signs_are_balanced() -> None:
    s = random_signs(torch.Generator().manual_seed(2), 1 << 16, torch.device("cpu"), torch.float32)
    assert set(s.unique().tolist()) == {-1.0, 1.0}
    assert abs(s.mean().item()) < 6 / 256  # 6 standard errors of a mean of 2^16 +-1 signs
