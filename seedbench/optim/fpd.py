"""FPD, fixed projection descent (docs/methods.md, "FPD"): train theta = theta0 + P c with P drawn once.

The clean formulation, not the reference's: the forward pass always sees the current point
theta0 + P c_t (the reference evaluated theta + P c_{t-1}, double-counting the displacement).
Updating theta by P (c_{t+1} - c_t) = -lr P P^T g is the same as SGD on c; theta0 and c are kept so
the point can be rebuilt exactly from them (`rebuild_parameters`) and checkpointed.
"""

from __future__ import annotations

from typing import Any

import torch

from seedbench.optim.directions import DEFAULT_CHUNK
from seedbench.optim.rbd import RBD


class FPD(RBD):
    """Same arguments as RBD; the d directions are those of one fixed seed, reused every step.

    theta0 is the parameter vector at the first step. A parameter without a gradient counts as zero
    gradient but is still moved along P, so theta - theta0 stays in span(P). All groups must share
    one learning rate for the same reason.

    keep_directions: hold P in memory after the first step instead of redrawing it every step
    (the results are bitwise the same; a step then costs two matrix-vector products instead of a
    Gaussian RBD step). None keeps it when it takes at most KEEP_BYTES (FC on Fashion-MNIST at
    d = 250: 102 MB in float32).
    """

    method = "fpd"
    FIXED_STEP = 0
    KEEP_BYTES = 1 << 30

    def __init__(
        self,
        params: Any,
        lr: float,
        dims: int = 250,
        distribution: str = "normal",
        normalization: str = "auto",
        compartments: str = "network",
        bases: str = "gaussian",
        chunk: int = DEFAULT_CHUNK,
        seed: int | None = None,
        keep_directions: bool | None = None,
    ):
        self.keep_directions = keep_directions
        self._theta0: torch.Tensor | None = None
        self._coords: list[torch.Tensor] | None = None
        super().__init__(params, lr, dims, distribution, normalization, compartments, bases, chunk, seed)

    def _on_layout_change(self) -> None:
        if getattr(self, "_theta0", None) is not None:
            raise ValueError("FPD's subspace is fixed at the first step; parameter groups cannot be added afterwards")
        super()._on_layout_change()

    def _direction_step(self) -> int:
        return self.FIXED_STEP

    def _keep_directions(self) -> bool:
        if self.keep_directions is not None:
            return self.keep_directions
        layout = self._layout
        return self.dims * layout.numel * layout.dtype.itemsize <= self.KEEP_BYTES

    def _apply(self, g_hat: torch.Tensor, coords: list[torch.Tensor], present: list[bool]) -> None:
        rates = set(self._group_rates())
        if len(rates) != 1:
            raise ValueError(f"FPD needs one learning rate for all parameter groups, got {sorted(rates)}")
        lr = rates.pop()
        layout = self._layout
        if self._theta0 is None:
            self._theta0 = layout.gather_params().clone()
            self._coords = [torch.zeros_like(c) for c in coords]
        assert self._coords is not None
        for total, c in zip(self._coords, coords):
            total.add_(c.to(total.device), alpha=-lr)
        layout.add_(g_hat, [-lr] * len(self.param_groups))

    def fixed_directions(self) -> list[torch.Tensor]:
        """P: the normalised fixed directions, one d_k x D_k matrix per compartment."""
        return self.directions(self.FIXED_STEP)

    @property
    def theta0(self) -> torch.Tensor | None:
        return self._theta0

    @property
    def coordinates(self) -> list[torch.Tensor] | None:
        """c, the trained coordinates in the fixed subspace (None before the first step)."""
        return self._coords

    @torch.no_grad()
    def rebuild_parameters(self) -> None:
        """Set the parameters to exactly theta0 + P c (removes float drift; restores a point from a checkpoint)."""
        if self._theta0 is None or self._coords is None:
            return
        layout = self._layout
        point = torch.empty(layout.numel, device=layout.device, dtype=layout.dtype)
        self._projector.combine(self.seed, self.FIXED_STEP, self._coords, point)
        point += self._theta0.to(point.device)
        layout.copy_(point)

    def _extra_state(self) -> dict[str, Any]:
        extra = super()._extra_state()
        extra["theta0"] = None if self._theta0 is None else self._theta0.clone()
        extra["coords"] = None if self._coords is None else [c.clone() for c in self._coords]
        return extra

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        super()._load_extra_state(extra)
        layout = self._layout
        theta0 = extra.get("theta0")
        self._theta0 = None if theta0 is None else theta0.to(device=layout.device, dtype=layout.dtype).clone()
        coords = extra.get("coords")
        self._coords = None if coords is None else [c.to(device=layout.device).clone() for c in coords]
