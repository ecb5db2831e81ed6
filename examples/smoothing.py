"""A method that changes the loss: label smoothing plus an L2 penalty on the weights, as a seedbench plugin.

    seedbench sweep --plugin examples/smoothing.py --method smoothing,sgd --model fc --dataset digits --seeds 0-4

`loss(cfg)` returns the training loss as a function of (logits, labels, model); the model is there for
regularizers that look at the weights. Validation and test always report plain cross-entropy, so the
arms of a comparison are scored alike.
"""

from __future__ import annotations

import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method


class SmoothingConfig(TrialConfig):
    smoothing: float = Field(0.1, ge=0, lt=1, description="label smoothing: the mass moved from the true class to all classes")
    l2: float = Field(0.0, ge=0, description="coefficient of the sum of squared weights added to the loss")


def smoothed_loss(cfg: SmoothingConfig):
    def loss(logits: torch.Tensor, y: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
        value = torch.nn.functional.cross_entropy(logits, y, label_smoothing=cfg.smoothing)
        if cfg.l2:
            value = value + cfg.l2 * sum(p.pow(2).sum() for p in model.parameters())
        return value

    return loss


register_method(
    Method(
        name="smoothing",
        config=SmoothingConfig,
        optimizer=lambda params, lr, cfg, seed: torch.optim.SGD(params, lr=lr),
        loss=smoothed_loss,
        learning_rates={"default": {"fc-digits": 0.05, "*": 0.05}},
        arm_keys=("smoothing", "l2"),
        description="SGD on a label-smoothed cross-entropy, with an optional L2 penalty",
    )
)
