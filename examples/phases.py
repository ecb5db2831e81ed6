"""A method with phases and an initializer of its own: linear probe, then fine-tune, as a seedbench plugin.

    seedbench sweep --plugin examples/phases.py --method probe_then_tune,sgd --model fc --dataset digits --seeds 0-4

`initialize(model, cfg, generator)` runs after the model's own initializer, on the cell's init stream:
here it scales the last layer's weights down ("small head"). `epoch(run)` is the method's own epoch: for
the first `probe_epochs` epochs only the last layer trains (the rest is frozen), then everything does.
It calls `run.step()` once per step of the epoch's budget, so the comparison with other methods stays
at equal data; between steps it is free to change what trains.
"""

from __future__ import annotations

import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method


class PhasesConfig(TrialConfig):
    probe_epochs: int = Field(1, ge=0, description="epochs in which only the last layer trains")
    head_scale: float = Field(0.1, gt=0, description="the last layer's initial weights are multiplied by this")


def last_layer(model: torch.nn.Module) -> torch.nn.Module:
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    return layers[-1]


def small_head(model: torch.nn.Module, cfg: PhasesConfig, generator: torch.Generator) -> None:
    with torch.no_grad():
        last_layer(model).weight.mul_(cfg.head_scale)


def probe_then_tune(run) -> None:
    head = set(map(id, last_layer(run.model).parameters()))
    probing = run.epoch <= run.state.cfg.probe_epochs
    for p in run.model.parameters():
        p.requires_grad_(not probing or id(p) in head)
    for _ in range(run.steps):
        run.step()
    run.state.extra.setdefault("phases", []).append("probe" if probing else "tune")


register_method(
    Method(
        name="probe_then_tune",
        config=PhasesConfig,
        optimizer=lambda params, lr, cfg, seed: torch.optim.SGD(params, lr=lr),
        initialize=small_head,
        epoch=probe_then_tune,
        learning_rates={"default": {"fc-digits": 0.05, "*": 0.05}},
        arm_keys=("probe_epochs", "head_scale"),
        description="train only the last layer for probe_epochs epochs, then the whole network",
    )
)
