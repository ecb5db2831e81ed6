"""NES, the natural-evolution-strategies baseline of the random-bases study (docs/methods.md, "NES").

Gradient-free: each population member is the model at theta + sigma * e_i with RAW noise
e_i ~ N(0, I_D), scored by a closure that draws its own minibatch. Ranks, not raw losses, weight the
update, so the step size does not depend on the loss scale. Noise is regenerated from the step's
seed for the update instead of being kept, which costs a second pass of random numbers but keeps
memory at O(chunk * D) for any population.

The normalisation ("auto": divide by sqrt(D)) applies to the UPDATE only, as in the reference: the
members must sit at distance ~ sigma * sqrt(D) from theta. Scaling the perturbation down as well
leaves every member ~ sigma away, where the loss differences between members are smaller than the
minibatch noise, the ranks are random and the update is uncorrelated with the gradient (measured on
FC-FMNIST: mean cosine -0.0003 +- 0.0005 over 40 updates; see docs/random-bases.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from seedbench.optim.base import RandomBasesOptimizer, check_choice, check_positive_float
from seedbench.optim.directions import DEFAULT_CHUNK, iter_chunks, step_seed

NES_NORMALIZATIONS = ("auto", "none")


def rank_utilities(losses: torch.Tensor) -> torch.Tensor:
    """u_i = rank_i/(d-1) - 0.5, the lowest loss getting +0.5 and the highest -0.5; sums to zero.

    Ties are broken by position (stable sort), and NaN losses sort last, i.e. count as the worst.
    """
    losses = losses.reshape(-1)
    d = losses.numel()
    if d < 2:
        raise ValueError(f"rank utilities need at least 2 losses, got {d}")
    order = torch.argsort(losses, stable=True)
    position = torch.empty_like(order)
    position[order] = torch.arange(d, device=losses.device)
    return 0.5 - position.to(torch.float64) / (d - 1)


def _as_scalar(value: Any, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"the NES closure must return a scalar loss, got a tensor of shape {tuple(value.shape)}")
        return value.detach().reshape(()).to(device=device, dtype=torch.float64)
    if isinstance(value, (int, float)):
        return torch.tensor(float(value), device=device, dtype=torch.float64)
    raise ValueError(f"the NES closure must return a loss (tensor or float), got {type(value).__name__}")


class NES(RandomBasesOptimizer):
    """theta <- theta + lr * sum_i u_i eps_i / (sigma d), u_i from the ranks of the members' losses.

    Member i is evaluated at theta + sigma * e_i (raw e_i); only the update uses eps_i = e_i * s, with
    s = 1/sqrt(D) under normalization "auto" and s = 1 under "none". No momentum, no weight decay.

    Call `opt.step(closure)` where closure() takes no arguments and returns the loss of the model at its
    CURRENT parameters (no backward; draw a fresh minibatch inside). The optimizer calls it once per
    member with the parameters perturbed in place, then restores them and applies the update.

    Args:
        dims: population size d.
        sigma: perturbation scale.
        antithetic: members come in pairs (+eps_k, -eps_k); d must be even.
        normalization: "auto" (update with eps = e / sqrt(D), the reference's default) or "none" (eps = e).
        distribution, chunk, seed: as for RBD.
    """

    method = "nes"
    gradient_free = True  # the trainer passes a loss closure without the backward pass
    # the reference stops NES on NaN only: its early epochs sit near chance by design (a handful of
    # updates per epoch), so an accuracy floor would end runs that are still learning
    default_stop_rule = "nan"

    def __init__(
        self,
        params: Any,
        lr: float,
        dims: int = 250,
        sigma: float = 0.01,
        antithetic: bool = False,
        distribution: str = "normal",
        normalization: str = "auto",
        chunk: int = DEFAULT_CHUNK,
        seed: int | None = None,
    ):
        self.sigma = check_positive_float("sigma", sigma)
        if not isinstance(antithetic, bool):
            raise ValueError(f"antithetic must be True or False, got {antithetic!r}")
        self.antithetic = antithetic
        self.normalization = check_choice("normalization", normalization, NES_NORMALIZATIONS)
        if isinstance(dims, int) and not isinstance(dims, bool) and dims < 2:
            raise ValueError(f"dims (the NES population) must be >= 2 to rank members, got {dims}")
        if antithetic and isinstance(dims, int) and dims % 2:
            raise ValueError(f"antithetic NES pairs members, so dims must be even, got {dims}")
        self._gen: torch.Generator | None = None
        self._buffer: torch.Tensor | None = None
        super().__init__(params, lr, dims, distribution, chunk, seed)
        self.last_losses: torch.Tensor | None = None

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "sigma": self.sigma, "antithetic": self.antithetic, "normalization": self.normalization}

    @property
    def evaluations_per_step(self) -> int:
        """Closure calls (minibatches) per step: the whole population, antithetic or not.

        The trainer budgets NES in images with it: one step consumes evaluations_per_step x batch images.
        """
        return self.dims

    @property
    def noise_vectors(self) -> int:
        """Independent noise draws per step (half the population when antithetic)."""
        return self.dims // 2 if self.antithetic else self.dims

    @property
    def update_scale(self) -> float:
        """s in eps = s * e: 1/sqrt(D) under "auto", 1 under "none". The perturbations never use it."""
        return 1.0 / math.sqrt(self._layout.numel) if self.normalization == "auto" else 1.0

    def _noise_chunks(self, step: int, device: torch.device, dtype: torch.dtype):
        gen = self._gen
        if gen is None or gen.device != device:
            gen = self._gen = torch.Generator(device=device)
        gen.manual_seed(step_seed(self.seed, step))
        dim = self._layout.numel
        need = min(self.chunk, self.noise_vectors) * dim
        buf = self._buffer
        if buf is None or buf.device != device or buf.dtype != dtype or buf.numel() < need:
            buf = self._buffer = torch.empty(need, device=device, dtype=dtype)
        return iter_chunks(gen, self.noise_vectors, dim, self.distribution, self.chunk, buf)

    def noise(self, step: int) -> torch.Tensor:
        """The raw noise vectors e (noise_vectors x D) of `step`, regenerated from its seed.

        Members of that step sat at theta + sigma * e (and theta - sigma * e when antithetic); the
        update used update_scale * e.
        """
        layout = self._layout
        out = torch.empty(self.noise_vectors, layout.numel, device=layout.device, dtype=layout.dtype)
        for start, e in self._noise_chunks(step, layout.device, layout.dtype):
            out[start : start + e.shape[0]] = e
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> torch.Tensor:  # type: ignore[override]
        if closure is None:
            raise ValueError("NES.step needs a closure that returns the loss at the current parameters")
        layout = self._layout
        layout.check_uniform()
        device, dtype = layout.device, layout.dtype
        theta = layout.gather_params().clone()
        work = torch.empty_like(theta)
        amp = self.sigma  # raw noise: members sit ~ sigma * sqrt(D) away from theta
        signs = (1.0, -1.0) if self.antithetic else (1.0,)
        losses: list[torch.Tensor] = []
        try:
            for _, e in self._noise_chunks(self.steps_taken, device, dtype):
                for row in e:
                    for sign in signs:
                        torch.add(theta, row, alpha=sign * amp, out=work)
                        layout.copy_(work)
                        losses.append(_as_scalar(closure(), device))
        finally:
            layout.copy_(theta)
        fitness = torch.stack(losses)
        utilities = rank_utilities(fitness).to(dtype)
        weights = utilities[0::2] - utilities[1::2] if self.antithetic else utilities
        # sum_i u_i e_i in raw noise units; u > 0 for the low losses, so it is a descent direction
        descent = torch.zeros_like(theta)
        for start, e in self._noise_chunks(self.steps_taken, device, dtype):
            descent.addmv_(e.t(), weights[start : start + e.shape[0]])
        factor = self.update_scale / (self.sigma * self.dims)  # the normalisation enters here only
        layout.add_(descent, [r * factor for r in self._group_rates()])
        self._record_step(fitness, descent)
        self.last_losses = fitness
        self.steps_taken += 1
        return fitness.mean()

    def _record_step(self, fitness: torch.Tensor, descent: torch.Tensor) -> None:
        self._record("nes_loss_mean", fitness.mean())
        self._record("nes_loss_min", fitness.min())
        self._record("nes_loss_max", fitness.max())
        self._record("nes_loss_std", fitness.std())
        g, present = self._layout.gather_grads()
        if g is not None and all(present):
            # the update is theta += lr * factor * descent: a good one points along -g, so cos(g, -descent) > 0
            self._record_cosine(g, -descent)
