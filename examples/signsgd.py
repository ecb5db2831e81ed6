"""A complete seedbench plugin: the sign-SGD method in one file.

    seedbench sweep --plugin examples/signsgd.py --method signsgd,sgd --model fc --dataset digits --seeds 0-4
    seedbench report --plugin examples/signsgd.py --baseline sgd

Copy it anywhere and edit it: seedbench never needs to be changed to run a method of your own.
Every step moves each weight by the learning rate, in the direction that lowers the loss:
w <- w - lr * sign(grad).
"""

from __future__ import annotations

import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method
from seedbench.methods.space import log_uniform


class SignSGD(torch.optim.Optimizer):
    """w <- w - lr * sign(g), with optional decoupled weight decay. Elementwise, so seeds can be packed."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(p.grad), alpha=-group["lr"])
        return loss


class SignSGDConfig(TrialConfig):
    """The method's own keys, on top of every cell's (model, dataset, seed, epochs, lr, ...)."""

    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay")


register_method(
    Method(
        name="signsgd",
        config=SignSGDConfig,
        optimizer=lambda params, lr, cfg, seed: SignSGD(params, lr=lr, weight_decay=cfg.weight_decay),
        learning_rates={"default": {"fc-digits": 0.002, "*": 0.001}},
        presets={"decay": {"weight_decay": 0.01}},
        arm_keys=("weight_decay",),
        # what `seedbench tune` searches: a sign step moves every weight by lr, so lr is far below SGD's
        tunable={"lr": log_uniform(1e-5, 1e-2), "weight_decay": log_uniform(1e-5, 1e-1)},
        packable=True,  # elementwise and per parameter: each member's own SignSGD steps its slice of a pack
        description="sign-SGD: every weight moves by lr in the direction of -sign(grad)",
    )
)
