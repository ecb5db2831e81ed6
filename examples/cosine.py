"""SGD with linear warmup and a cosine decay of the learning rate, as a seedbench plugin.

    seedbench sweep --plugin examples/cosine.py --method cosine,sgd --model fc --dataset digits --seeds 0-4
    seedbench report --plugin examples/cosine.py --baseline sgd

The lr climbs linearly from lr / warmup_steps to lr over the first `warmup_epochs` epochs, then falls
along a half cosine to `final_fraction` x lr at the end of the run. The schedule is stepped after every
optimizer step; each epoch's row in epochs.jsonl carries the lr it ended at.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method
from seedbench.methods.space import log_uniform, uniform


class CosineConfig(TrialConfig):
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_epochs: float = Field(1.0, ge=0, description="epochs of linear warmup (fractions allowed)")
    final_fraction: float = Field(0.0, ge=0, le=1, description="the lr at the last step, as a fraction of lr")


def warmup_cosine(optimizer: torch.optim.Optimizer, cfg: CosineConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A multiplier of the base lr for every step of the run."""
    total = max(cfg.epochs * steps_per_epoch, 1)
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return cfg.final_fraction + (1 - cfg.final_fraction) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


register_method(
    Method(
        name="cosine",
        config=CosineConfig,
        optimizer=lambda params, lr, cfg, seed: torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
        schedule=warmup_cosine,
        schedule_interval="step",
        learning_rates={"default": {"fc-digits": 0.1, "*": 0.05}},
        presets={"no_warmup": {"warmup_epochs": 0.0}},
        arm_keys=("momentum", "weight_decay", "warmup_epochs", "final_fraction"),
        # what `seedbench tune` searches
        tunable={"lr": log_uniform(1e-3, 1.0), "warmup_epochs": uniform(0.0, 2.0), "momentum": uniform(0.0, 0.99)},
        description="SGD with momentum, linear warmup and cosine decay of the learning rate",
    )
)
