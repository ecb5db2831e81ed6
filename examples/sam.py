"""Sharpness-aware minimization (SAM) as a seedbench plugin: an optimizer that needs a closure.

    seedbench sweep --plugin examples/sam.py --method sam,sgd --model fc --dataset digits --seeds 0-4
    seedbench report --plugin examples/sam.py --baseline sgd

SAM (Foret et al., 2021) evaluates the gradient twice per step: once at the weights w, to find the
direction in which the loss rises fastest within a ball of radius rho, and once at the perturbed
weights w + e, whose gradient then updates w. The second gradient needs a second forward and
backward pass on the same batch, so `step` calls the loss closure twice. seedbench hands every
optimizer such a closure (zero the grads, forward, backward, return the loss), so nothing in the plugin
asks for it.
"""

from __future__ import annotations

import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method
from seedbench.methods.space import log_uniform


class SAM(torch.optim.Optimizer):
    """SGD (with optional momentum) on the gradient taken at the worst point of a rho-ball around w."""

    def __init__(self, params, lr: float, rho: float = 0.05, momentum: float = 0.0):
        if lr <= 0 or rho <= 0 or momentum < 0:
            raise ValueError(f"need lr > 0, rho > 0, momentum >= 0; got lr={lr}, rho={rho}, momentum={momentum}")
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        if closure is None:
            raise ValueError("SAM needs a closure that re-evaluates the loss on the same batch")
        with torch.enable_grad():
            loss = closure()  # gradients at w
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = p.grad * scale
                p.add_(e)  # climb to the sharpest nearby point
                self.state[p]["e"] = e
        with torch.enable_grad():
            closure()  # gradients at w + e
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.sub_(self.state[p]["e"])  # back to w
                grad = p.grad
                if group["momentum"]:
                    buf = self.state[p].get("momentum")
                    buf = grad.clone() if buf is None else buf.mul_(group["momentum"]).add_(grad)
                    self.state[p]["momentum"] = buf
                    grad = buf
                p.add_(grad, alpha=-group["lr"])
        return loss


class SAMConfig(TrialConfig):
    rho: float = Field(0.05, gt=0, description="radius of the neighbourhood whose worst point SAM descends from")
    momentum: float = Field(0.0, ge=0)


register_method(
    Method(
        name="sam",
        config=SAMConfig,
        optimizer=lambda params, lr, cfg, seed: SAM(params, lr=lr, rho=cfg.rho, momentum=cfg.momentum),
        learning_rates={"default": {"fc-digits": 0.05, "cnn-digits": 0.1, "*": 0.05}},
        presets={"wide": {"rho": 0.2}},
        arm_keys=("rho", "momentum"),
        tunable={"lr": log_uniform(1e-3, 1.0), "rho": log_uniform(0.01, 0.5)},  # what `seedbench tune` searches
        description="sharpness-aware minimization: SGD on the gradient at the worst point of a rho-ball",
    )
)
