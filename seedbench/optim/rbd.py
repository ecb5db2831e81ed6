"""RBD, random bases descent (docs/methods.md, "RBD"): SGD on the projection of g onto d fresh random directions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from seedbench.optim.base import RandomBasesOptimizer, check_choice
from seedbench.optim.directions import DEFAULT_CHUNK
from seedbench.optim.projector import BASES, COMPARTMENTS, NORMALIZATIONS, Projector


class RBD(RandomBasesOptimizer):
    """theta <- theta - lr * g_hat, g_hat = sum_i <g, phi_i> phi_i with new directions phi every step.

    Use like SGD: `loss.backward(); opt.step()`. Directions of step t come from a generator seeded with
    (seed, t) and are never stored, so `directions(t)` regenerates them and `reconstruct(t, coords)`
    rebuilds an update from the d coordinates alone, as a remote worker would.

    Args:
        lr: learning rate (per param group, like torch.optim.SGD).
        dims: d, directions per step (per compartment).
        distribution: entries of Gaussian-type bases: "normal", "uniform" ([-1, 1]) or "bernoulli" (+-1).
        normalization: "auto" (entries / sqrt(D): g_hat = E E^T g / D, the table1 preset) or
            "unbiased" (g_hat = E E^T g / (d E[e^2]), so E[g_hat] = g).
        compartments: "network" (one set of d directions for all of R^D) or "layer" (d per tensor).
        bases: "gaussian" (i.i.d. entries, the study's method) or "hadamard" (randomised Walsh-Hadamard
            rows: orthogonal within a step, O(D log D) per step; see docs/random-bases.md).
        chunk: directions generated at a time; memory is O(chunk * D). Part of the random stream, so
            regenerating needs the same chunk.
        seed: base seed of the direction stream (None: drawn from torch's global generator).
    """

    method = "rbd"

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
    ):
        self.normalization = check_choice("normalization", normalization, NORMALIZATIONS)
        self.compartments = check_choice("compartments", compartments, COMPARTMENTS)
        self.bases = check_choice("bases", bases, BASES)
        if bases == "hadamard" and distribution != "normal":
            raise ValueError("distribution applies to bases='gaussian' only; Hadamard bases always have +-1 entries")
        self._projector_cache: Projector | None = None
        self._g_hat: torch.Tensor | None = None
        super().__init__(params, lr, dims, distribution, chunk, seed)
        _ = self._projector  # build now, so an impossible configuration fails in the constructor
        self.last_coordinates: list[torch.Tensor] | None = None

    def _on_layout_change(self) -> None:
        self._projector_cache = None

    @property
    def _projector(self) -> Projector:
        if self._projector_cache is None:
            self._projector_cache = Projector(
                self._layout.sizes,
                self.dims,
                self.distribution,
                self.normalization,
                self.bases,
                self.chunk,
                self.compartments,
                keep=self._keep_directions(),
            )
        return self._projector_cache

    def _keep_directions(self) -> bool:
        """RBD draws new directions every step, so there is nothing worth keeping (FPD overrides)."""
        return False

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "normalization": self.normalization, "compartments": self.compartments, "bases": self.bases}

    def _direction_step(self) -> int:
        """Which entry of the seed stream this step uses (FPD pins it)."""
        return self.steps_taken

    def _out_buffer(self, like: torch.Tensor) -> torch.Tensor:
        buf = self._g_hat
        if buf is None or buf.shape != like.shape or buf.device != like.device or buf.dtype != like.dtype:
            buf = self._g_hat = torch.empty_like(like)
        return buf

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        layout = self._layout
        layout.check_uniform()
        g, present = layout.gather_grads()
        if g is None:
            return loss
        g_hat = self._out_buffer(g)
        coords = self._projector.project(g, self.seed, self._direction_step(), g_hat)
        self._record_cosine(g, g_hat)
        self._apply(g_hat, coords, present)
        self.last_coordinates = coords
        self.steps_taken += 1
        return loss

    def _apply(self, g_hat: torch.Tensor, coords: list[torch.Tensor], present: list[bool]) -> None:
        rates = self._group_rates()
        self._layout.add_(g_hat, [-r for r in rates], None if all(present) else present)

    # ----------------------------------------------------------------- regeneration
    def directions(self, step: int) -> list[torch.Tensor]:
        """The normalised directions phi used at `step` (0-based), one d_k x D_k matrix per compartment."""
        layout = self._layout
        return self._projector.directions(self.seed, step, layout.device, layout.dtype)

    def reconstruct(self, step: int, coords: list[torch.Tensor]) -> torch.Tensor:
        """g_hat = sum_i c_i phi_i of `step` from its coordinates alone (the distributed-worker view)."""
        layout = self._layout
        out = torch.empty(layout.numel, device=layout.device, dtype=layout.dtype)
        return self._projector.combine(self.seed, step, coords, out)
