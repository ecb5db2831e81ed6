"""Class codes for Sup-Walsh: Walsh (Sylvester-Hadamard) rows, and the one-hot / random ablation codes.

Sup-Walsh multiplies its hidden vector elementwise by the code of the sample's class. Walsh rows are
mutually orthogonal +-1 vectors, so every class gets an equally distant, equally loud code. Row 0
(all ones) is skipped because it would leave its class's vector unchanged; class c uses row c+1,
which is why the size is the smallest power of two >= K+1 (16 for 10 classes, 4 for 3, 32 for 16).
"""

from __future__ import annotations

import torch
from scipy.linalg import hadamard

CODE_KINDS = ("walsh", "onehot", "random")


def code_length(num_classes: int) -> int:
    """n: the smallest power of two >= num_classes + 1."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return 1 << num_classes.bit_length()


def walsh_codes(num_classes: int) -> torch.Tensor:
    """Rows 1..K of the Sylvester-Hadamard matrix of size n = code_length(K): a float [K, n] of +-1."""
    n = code_length(num_classes)
    return torch.from_numpy(hadamard(n)[1 : num_classes + 1]).float()


def onehot_codes(num_classes: int, n: int | None = None) -> torch.Tensor:
    """Class c -> e_c in R^n: orthogonal like Walsh rows, but silencing all but one hidden unit."""
    n = code_length(num_classes) if n is None else n
    if n < num_classes:
        raise ValueError(f"one-hot codes for {num_classes} classes need n >= {num_classes}, got {n}")
    return torch.eye(num_classes, n)


def random_codes(num_classes: int, n: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Independent fair +-1 entries: as loud as Walsh rows but only approximately orthogonal."""
    n = code_length(num_classes) if n is None else n
    bits = torch.randint(0, 2, (num_classes, n), generator=generator)
    return (bits * 2 - 1).float()


def make_codes(kind: str, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Codes by name, all of length code_length(K), so the ablation arms share one Sup-Walsh architecture."""
    if kind == "walsh":
        return walsh_codes(num_classes)
    if kind == "onehot":
        return onehot_codes(num_classes)
    if kind == "random":
        return random_codes(num_classes, generator=generator)
    raise ValueError(f"unknown code kind {kind!r}; use one of {CODE_KINDS}")


__all__ = ["CODE_KINDS", "code_length", "make_codes", "onehot_codes", "random_codes", "walsh_codes"]
