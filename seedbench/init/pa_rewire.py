"""Preferential-attachment (PA) rewiring of a weight tensor (docs/methods.md, "PA rewiring").

Rewiring only permutes values, so it keeps the base initializer's value distribution exactly while
reorganising which neuron gets which weight: each row's smallest values are sent, with high
probability, to the columns whose running (signed) strength is largest, which balances strengths.

Sampling. A pass needs, for every row, a random column order drawn by successive weighted sampling
without replacement (Plackett-Luce) with probabilities p. Drawing E_j ~ Exp(1) i.i.d. and sorting the
keys E_j / p_j ascending gives exactly that order: E_j / p_j ~ Exp(rate p_j), the first of several
independent exponential clocks to ring is j with probability p_j / sum(p), and by memorylessness the
remaining clocks race again afresh - which is the Plackett-Luce recursion. Taking logs,
-log(E_j / p_j) = log p_j + G_j with G_j = -log E_j a standard Gumbel variable, so this is the
Gumbel-top-k trick in exponential form; the normalisation p / sum(p) only shifts every log-key by the
same constant and is skipped. All noise for a pass is drawn in a few large batches on the tensor's
device; the remaining per-row work is a handful of vectorised ops. The row loop itself cannot be
vectorised: row r's probabilities depend on the final order of rows < r.

Two interchangeable kernels run that loop: a torch one (any device, any float dtype) and, for CPU
tensors, one on NumPy views of the same memory. They perform the same IEEE operations on the same
noise, so for a given seed they produce identical results; the NumPy kernel exists only because
torch's CPU sort is 5-25x slower than NumPy's SIMD sort on rows of a few thousand elements, and sorting
is almost all of the work.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

from seedbench.init.baselines import GeneratorLike, resolve_generator

Backend = Literal["auto", "torch", "numpy"]

# noise is drawn in blocks of about this many float64 values (8 MiB), bounding memory for big tensors;
# the block size depends only on the shape, so results do not depend on it being a block at all
_NOISE_BLOCK = 1 << 20
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)


def pa_rewire_(tensor: torch.Tensor, generator: GeneratorLike = None, *, backend: Backend = "auto") -> torch.Tensor:
    """PA-rewire `tensor` in place: one pass over its rows, then one over its columns.

    `generator`: a torch.Generator on the tensor's device, an int seed (0 included), or None for torch's
    global RNG. Returns the same tensor object, with dtype, device and the multiset of values unchanged.
    """
    _check(tensor, backend)
    gen = resolve_generator(generator, tensor.device)
    if tensor.numel() == 0:
        return tensor
    with torch.no_grad():
        in_place = tensor.is_contiguous()  # then pass 1 works directly in the tensor's memory
        rows = tensor.detach().reshape(tensor.shape[0], -1)
        rows = rows if in_place else rows.contiguous()
        _pass(rows, gen, backend)
        columns = rows.t().contiguous()
        _pass(columns, gen, backend)
        if in_place:
            rows.copy_(columns.t())
        else:
            tensor.copy_(columns.t().reshape(tensor.shape))
    return tensor


def pa_pass_(matrix: torch.Tensor, generator: GeneratorLike = None, *, backend: Backend = "auto") -> torch.Tensor:
    """One PASS over the rows of a 2-D tensor, in place (pass 2 of pa_rewire_ is `pa_pass_(m.t())`).

    Row 0 is left as it is; every row keeps its multiset of values. Exposed for tests and for studies
    of a single pass.
    """
    if matrix.dim() != 2:
        raise ValueError(f"pa_pass_ works on a 2-D matrix; got shape {tuple(matrix.shape)} (use pa_rewire_)")
    _check(matrix, backend)
    gen = resolve_generator(generator, matrix.device)
    if matrix.numel() == 0:
        return matrix
    with torch.no_grad():
        in_place = matrix.is_contiguous()
        work = matrix.detach() if in_place else matrix.detach().contiguous()
        _pass(work, gen, backend)
        if not in_place:
            matrix.copy_(work)
    return matrix


def _check(tensor: torch.Tensor, backend: Backend) -> None:
    if backend not in ("auto", "torch", "numpy"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'numpy', not {backend!r}")
    if tensor.dim() < 2:
        raise ValueError(
            f"PA rewiring needs a weight tensor with >= 2 dims (rows = output neurons, columns = input "
            f"neurons); got shape {tuple(tensor.shape)}. Rewire weights, not biases."
        )
    if not tensor.is_floating_point():
        raise TypeError(f"PA rewiring needs a floating-point tensor; got {tensor.dtype}")


def _pass(rows: torch.Tensor, gen: torch.Generator | None, backend: Backend) -> None:
    """PASS(A) on a contiguous 2-D tensor, in place."""
    numpy_ok = rows.device.type == "cpu" and rows.dtype in _NUMPY_DTYPES
    if backend == "numpy" and not numpy_ok:
        raise ValueError(f"the numpy kernel needs a CPU float16/32/64 tensor; got {rows.dtype} on {rows.device}")
    if rows.shape[0] < 2:
        return
    noise = _exponential_blocks(rows.shape[0] - 1, rows.shape[1], gen, rows.device)
    if backend == "numpy" or (backend == "auto" and numpy_ok):
        _pass_numpy(rows.numpy(), (block.numpy() for block in noise))
    else:
        _pass_torch(rows, noise)


def _exponential_blocks(n_rows: int, n_cols: int, gen: torch.Generator | None, device: torch.device) -> Iterator[torch.Tensor]:
    """Exp(1) noise for n_rows rows, in blocks of whole rows, drawn on `device` in float64.

    E = -log(U) with U uniform on [0, 1): E > 0 always (U = 0 gives +inf, a column that simply comes
    last), so the keys E / p are positive and never NaN.
    """
    per_block = max(1, _NOISE_BLOCK // max(n_cols, 1))
    for start in range(0, n_rows, per_block):
        count = min(per_block, n_rows - start)
        yield torch.rand((count, n_cols), generator=gen, device=device, dtype=torch.float64).log_().neg_()


def _pass_torch(rows: torch.Tensor, noise: Iterator[torch.Tensor]) -> None:
    n_cols = rows.shape[1]
    sorted_rows = rows[1:].sort(dim=1).values.unbind(0)  # a pass never changes a row's multiset
    row_views = rows.unbind(0)
    s = torch.zeros(n_cols, dtype=torch.float64, device=rows.device)
    p = torch.empty_like(s)
    keys = torch.empty_like(s)
    r = 1
    for block in noise:
        for e in block.unbind(0):
            s.add_(row_views[r - 1])  # strengths so far, from rows already in their final order
            torch.add(s, s.min().abs_().add_(1.0), out=p)  # p = s + |min(s)| + 1, literally
            torch.div(e, p, out=keys)
            # keys > 0, and positive doubles order like their bit patterns read as int64: integer sort
            # is the faster path in torch and gives the identical permutation
            order = torch.argsort(keys.view(torch.int64))
            row_views[r].scatter_(0, order, sorted_rows[r - 1])  # k-th smallest value -> k-th drawn column
            r += 1


def _pass_numpy(rows: np.ndarray, noise: Iterator[np.ndarray]) -> None:
    n_cols = rows.shape[1]
    sorted_rows = np.sort(rows[1:], axis=1)
    s = np.zeros(n_cols, dtype=np.float64)
    p = np.empty_like(s)
    keys = np.empty_like(s)
    r = 1
    for block in noise:
        for e in block:
            np.add(s, rows[r - 1], out=s)
            np.add(s, abs(s.min()) + 1.0, out=p)
            np.divide(e, p, out=keys)
            rows[r, keys.argsort()] = sorted_rows[r - 1]
            r += 1
