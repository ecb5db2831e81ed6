"""One flat coordinate system over all trainable parameters.

Random-bases methods live in R^D, the concatenation of every trainable tensor. Rather than rebinding
`p.data` to views of one big buffer (which silently breaks when the trainer moves the model to
another device after building the optimizer), gradients are concatenated once per step and the
update is scattered back with one fused foreach kernel per parameter group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class FlatLayout:
    """Where each trainable parameter sits in the flat vector, and which group (learning rate) owns it."""

    def __init__(self, param_groups: Sequence[dict[str, Any]]):
        self.params: list[torch.Tensor] = []
        self.group_index: list[int] = []
        for gi, group in enumerate(param_groups):
            for p in group["params"]:
                if p.requires_grad:
                    self.params.append(p)
                    self.group_index.append(gi)
        if not self.params:
            raise ValueError("the optimizer has no trainable parameters (none with requires_grad=True)")
        self.sizes: list[int] = [p.numel() for p in self.params]
        self.shapes: list[torch.Size] = [p.shape for p in self.params]
        self.offsets: list[int] = []
        total = 0
        for n in self.sizes:
            self.offsets.append(total)
            total += n
        self.numel = total
        self.num_groups = len(param_groups)
        self.by_group: list[list[int]] = [[i for i, g in enumerate(self.group_index) if g == gi] for gi in range(self.num_groups)]

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.params[0].dtype

    def check_uniform(self) -> None:
        """All parameters must share one device and floating dtype: the flat vector has only one."""
        dev, dt = self.device, self.dtype
        if not dt.is_floating_point:
            raise ValueError(f"random-bases optimizers need floating-point parameters, got {dt}")
        for p in self.params:
            if p.device != dev or p.dtype != dt:
                raise ValueError(f"all parameters must share one device and dtype; found {dev}/{dt} and {p.device}/{p.dtype}")

    def gather_grads(self) -> tuple[torch.Tensor | None, list[bool]]:
        """The flat gradient (missing grads count as zero) and which parameters had one."""
        present = [p.grad is not None for p in self.params]
        if not any(present):
            return None, present
        parts = [
            p.grad.reshape(-1) if p.grad is not None else torch.zeros(n, device=p.device, dtype=p.dtype) for p, n in zip(self.params, self.sizes)
        ]
        for p in self.params:
            if p.grad is not None and p.grad.is_sparse:
                raise ValueError("random-bases optimizers do not support sparse gradients")
        return torch.cat(parts), present

    def gather_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [c.view(s) for c, s in zip(flat.split(self.sizes), self.shapes)]

    def add_(self, flat: torch.Tensor, alphas: Sequence[float], mask: Sequence[bool] | None = None) -> None:
        """params += alphas[group] * flat, one foreach kernel per group; masked-out params are left alone."""
        views = self._views(flat)
        for gi, members in enumerate(self.by_group):
            idx = members if mask is None else [i for i in members if mask[i]]
            if idx:
                torch._foreach_add_([self.params[i] for i in idx], [views[i] for i in idx], alpha=alphas[gi])

    def copy_(self, flat: torch.Tensor) -> None:
        torch._foreach_copy_(self.params, self._views(flat))
