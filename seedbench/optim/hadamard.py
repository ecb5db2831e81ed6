"""Structured random bases from a randomised Walsh-Hadamard transform.

Instead of d i.i.d. Gaussian directions (d x D random numbers and two d x D matrix-vector products
per step), a step draws D' = next_pow2(D) random signs s and d distinct rows r_1..r_d of the
Sylvester-Hadamard matrix H (entries +-1). Direction i is (s * H[r_i])[:D]. All coordinates
<g, phi_i> come out of ONE fast transform of s * g and the update sum_i c_i phi_i out of a second one,
so a step costs O(D log D) instead of O(d D). The directions of one step are mutually orthogonal in
the padded space R^D' (rows of H are), not independent.
"""

from __future__ import annotations

import torch

from seedbench.optim.directions import make_generator, step_seed


def next_pow2(n: int) -> int:
    if n < 1:
        raise ValueError(f"size must be >= 1, got {n}")
    return 1 << (n - 1).bit_length()


_BASE_BITS = 5  # the lowest 5 butterfly stages are one small dense matmul (they are the slow, strided ones)
_SYLVESTER: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}


def sylvester(n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The n x n Sylvester-Hadamard matrix (same ordering as scipy.linalg.hadamard), cached."""
    key = (n, torch.device(device), dtype)
    h = _SYLVESTER.get(key)
    if h is None:
        h = torch.ones(1, 1, dtype=dtype, device=device)
        while h.shape[0] < n:
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
        _SYLVESTER[key] = h
    return h


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised fast Walsh-Hadamard transform along the last dimension: returns x @ H_n.

    H_n is the Sylvester-ordered Hadamard matrix (scipy.linalg.hadamard(n)); it is symmetric, so this
    is also H_n @ x for a vector. H_n = H_{n/b} (x) H_b, so the lowest log2(b) stages are one matmul
    with a cached b x b matrix (b = 32: the strided small-stride butterflies are the slow ones) and the
    rest are vectorised butterfly stages ping-ponging between two buffers: two fused kernels a stage,
    no allocation. The input is never modified. O(n log n).
    """
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    lead = x.shape[:-1]
    base = min(n, 1 << _BASE_BITS)
    src = (x.reshape(-1, base) @ sylvester(base, x.device, x.dtype)).reshape(-1, n)
    if base == n:
        return src.reshape(*lead, n)
    a = torch.empty_like(src)
    h = base
    while h < n:
        sv = src.view(-1, n // (2 * h), 2, h)
        dv = a.view(-1, n // (2 * h), 2, h)
        torch.add(sv[:, :, 0], sv[:, :, 1], out=dv[:, :, 0])
        torch.sub(sv[:, :, 0], sv[:, :, 1], out=dv[:, :, 1])
        src, a = a, src
        h *= 2
    return src.reshape(*lead, n)


def random_signs(gen: torch.Generator, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """n independent +-1 signs from 16-bit random words: 16x fewer generator calls than one draw per sign."""
    words = torch.empty((n + 15) // 16, dtype=torch.int32, device=device).random_(0, 1 << 16, generator=gen)
    bits = (words.unsqueeze(1) >> torch.arange(16, dtype=torch.int32, device=device)) & 1
    return bits.reshape(-1)[:n].to(dtype).mul_(2).sub_(1)


def sample_rows(gen: torch.Generator, n: int, k: int, device: torch.device) -> torch.Tensor:
    """A uniformly random k-subset of range(n).

    On the CPU, Floyd's algorithm (k draws, O(k)) instead of a full randperm (O(n), ~0.5 ms at n = 2^17,
    as much as the whole transform); on accelerators randperm is cheap and needs no host round trip.
    """
    if k > n:
        raise ValueError(f"cannot choose {k} distinct rows out of {n}")
    if device.type != "cpu":
        return torch.randperm(n, generator=gen, device=device)[:k]
    draws = torch.rand(k, generator=gen, dtype=torch.float64).tolist()
    chosen: dict[int, None] = {}
    for j, u in zip(range(n - k, n), draws):
        t = min(int(u * (j + 1)), j)
        chosen[j if t in chosen else t] = None
    return torch.tensor(list(chosen), dtype=torch.long)


def draw_signs_rows(gen: torch.Generator, padded: int, dims: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The random part of one step: +-1 signs over the padded space and `dims` distinct row indices."""
    return random_signs(gen, padded, device, dtype), sample_rows(gen, padded, dims, device)


def hadamard_project(g: torch.Tensor, signs: torch.Tensor, rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Raw coordinates c_i = <(s * H[r_i])[:D], g> and out <- sum_i c_i (s * H[r_i])[:D].

    Returns c. `out` (length D) is overwritten, not accumulated.
    """
    dim, padded = g.shape[0], signs.shape[0]
    x = torch.zeros(padded, device=g.device, dtype=g.dtype)
    x[:dim] = g
    x.mul_(signs)
    coords = fwht(x).index_select(0, rows)
    z = torch.zeros(padded, device=g.device, dtype=g.dtype)
    z.index_copy_(0, rows, coords)
    y = fwht(z)
    torch.mul(y[:dim], signs[:dim], out=out)
    return coords


def hadamard_directions(
    seed: int,
    step: int,
    dim: int,
    dims: int,
    compartment: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The raw dims x dim direction matrix (entries +-1) of one step, as RBD(bases='hadamard') draws it."""
    device = torch.device(device)
    padded = next_pow2(dim)
    if dims > padded:
        raise ValueError(f"a Hadamard basis of a {dim}-dimensional space has at most {padded} rows, asked for {dims}")
    gen = make_generator(step_seed(seed, step, compartment), device)
    signs, rows = draw_signs_rows(gen, padded, dims, device, dtype)
    onehot = torch.zeros(dims, padded, device=device, dtype=dtype)
    onehot[torch.arange(dims, device=device), rows] = 1
    return (fwht(onehot) * signs)[:, :dim]
