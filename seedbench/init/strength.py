"""Neuron strengths of a weight tensor: the quantity PA rewiring and stabilization act on.

A tensor with >= 2 dims is read as a matrix of R = size(0) rows (output neurons) and numel/R columns
(input neurons; for a conv every (in_channel, ky, kx) is its own input neuron). Strengths are SIGNED
sums (docs/methods.md, "PA rewiring"): with absolute values a neuron with large cancelling weights would look
strong, which is not what rewiring balances. Sums are taken in float64 so the statistics of a float32
tensor do not depend on summation order.
"""

from __future__ import annotations

import torch


def as_matrix(tensor: torch.Tensor) -> torch.Tensor:
    """The (rows = size(0), columns = rest) view every strength computation uses; 1-D is an error."""
    if tensor.dim() < 2:
        raise ValueError(
            f"neuron strengths need a weight tensor with >= 2 dims (rows = output neurons); got shape "
            f"{tuple(tensor.shape)}. Biases and other 1-D tensors have no input/output structure."
        )
    return tensor.detach().reshape(tensor.shape[0], -1)


def strengths(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(input strengths = column sums, output strengths = row sums), float64, on the tensor's device."""
    matrix = as_matrix(tensor).to(torch.float64)
    return matrix.sum(dim=0), matrix.sum(dim=1)


def _var(x: torch.Tensor) -> torch.Tensor:
    # unbiased variance is undefined for one neuron; a single neuron has nothing to be unbalanced with
    return x.var(unbiased=True) if x.numel() > 1 else x.new_zeros(())


def _max_abs(x: torch.Tensor) -> float:
    return float(x.abs().max()) if x.numel() else 0.0


def strength_score(tensor: torch.Tensor) -> torch.Tensor:
    """mean(var(column sums), var(row sums)), unbiased: what stabilize_strength_ minimises (0-d tensor)."""
    col, row = strengths(tensor)
    return (_var(col) + _var(row)) / 2


def strength_stats(tensor: torch.Tensor) -> dict[str, float]:
    """Variance (unbiased) and max |.| of input and output strengths, plus the stabilization score."""
    col, row = strengths(tensor)
    col_var, row_var = _var(col), _var(row)
    return {
        "input_strength_var": float(col_var),
        "input_strength_max_abs": _max_abs(col),
        "output_strength_var": float(row_var),
        "output_strength_max_abs": _max_abs(row),
        "score": float((col_var + row_var) / 2),
    }
