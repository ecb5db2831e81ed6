"""What RBD, FPD and NES share: argument checks, the flat layout, seeds, diagnostics, checkpoints.

Only the learning rate lives in the param groups (so LR schedulers and per-group rates work as in any
torch optimizer); every other hyperparameter shapes the one random subspace the whole network shares,
so it is a property of the optimizer and a group may not override it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from seedbench.optim.directions import DISTRIBUTIONS
from seedbench.optim.flat import FlatLayout

_GROUP_KEYS = {"params", "lr", "param_names"}


def check_positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def resolve_seed(seed: int | None) -> int:
    """An explicit seed, or one drawn from torch's global generator (so torch.manual_seed still controls it)."""
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return seed


class RandomBasesOptimizer(Optimizer):
    """Base class; subclasses implement `step` and list their hyperparameters in `_config()`."""

    method: str = "random-bases"

    def __init__(self, params: Any, lr: float, dims: int, distribution: str, chunk: int, seed: int | None):
        lr = check_positive_float("lr", lr)
        self.dims = check_int("dims", dims, 1)
        self.distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
        self.chunk = check_int("chunk", chunk, 1)
        self.seed = resolve_seed(seed)
        self.steps_taken = 0
        self._diag_sums: dict[str, torch.Tensor] = {}
        self._diag_counts: dict[str, int] = {}
        self._layout_cache: FlatLayout | None = None
        super().__init__(params, {"lr": lr})

    # ----------------------------------------------------------------- param groups / layout
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        extra = set(param_group) - _GROUP_KEYS
        if extra:
            raise ValueError(f"{type(self).__name__} param groups may only set 'lr'; {sorted(extra)} apply to the whole network")
        if "lr" in param_group:
            check_positive_float("lr", param_group["lr"])
        super().add_param_group(param_group)
        self._layout_cache = None
        self._on_layout_change()

    def _on_layout_change(self) -> None:
        """Hook for subclasses whose state depends on D (e.g. FPD's theta0)."""

    @property
    def _layout(self) -> FlatLayout:
        if self._layout_cache is None:
            self._layout_cache = FlatLayout(self.param_groups)
        return self._layout_cache

    @property
    def num_params(self) -> int:
        """D: the dimension of the space the directions live in."""
        return self._layout.numel

    def _group_rates(self) -> list[float]:
        return [float(g["lr"]) for g in self.param_groups]

    # ----------------------------------------------------------------- diagnostics
    def _record(self, name: str, value: torch.Tensor) -> None:
        """Accumulate on the device; nothing syncs with the host until pop_diagnostics()."""
        value = value.detach().to(torch.float64)
        if name in self._diag_sums:
            self._diag_sums[name] += value
        else:
            self._diag_sums[name] = value.clone()
        self._diag_counts[name] = self._diag_counts.get(name, 0) + 1

    def _record_cosine(self, g: torch.Tensor, g_hat: torch.Tensor) -> None:
        # float32 reductions: three cheap passes; the ratio is a diagnostic, 1e-6 relative error is irrelevant
        denom = (torch.linalg.vector_norm(g) * torch.linalg.vector_norm(g_hat)).clamp_min(torch.finfo(g.dtype).tiny)
        self._record("cosine", torch.dot(g, g_hat) / denom)

    def pop_diagnostics(self) -> dict[str, float]:
        """Means of every per-step diagnostic since the previous call, then reset (the trainer calls this per epoch)."""
        out = {name: float(total) / self._diag_counts[name] for name, total in self._diag_sums.items()}
        self._diag_sums, self._diag_counts = {}, {}
        return out

    # ----------------------------------------------------------------- checkpoints
    def _config(self) -> dict[str, Any]:
        return {"method": self.method, "dims": self.dims, "distribution": self.distribution, "chunk": self.chunk}

    def _extra_state(self) -> dict[str, Any]:
        return {"config": self._config(), "seed": self.seed, "steps_taken": self.steps_taken}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        if extra.get("config") != self._config():
            raise ValueError(f"state dict was saved by an optimizer configured as {extra.get('config')}, this one is {self._config()}")
        self.seed = int(extra["seed"])
        self.steps_taken = int(extra["steps_taken"])

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["random_bases"] = self._extra_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("random_bases", None)
        if extra is None:
            raise ValueError(f"not a {type(self).__name__} state dict: the 'random_bases' entry is missing")
        super().load_state_dict(state_dict)
        self._load_extra_state(extra)
