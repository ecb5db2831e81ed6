"""What a training step and an epoch are, for every method: the state a step sees, the default step, the default epoch.

A method that only brings an optimizer is trained by `closure_step`: its optimizer's `step` gets a
closure under PyTorch's contract (zero the grads, forward, backward, return the loss - the contract of
torch.optim.LBFGS), so SGD, SAM, LBFGS-style and gradient-free optimizers share one path and the loop
never asks what kind of optimizer it holds. A method that brings its own `step` (AlgoPerf's
`update_params`) or its own `epoch` (methods with phases) gets the same `TrainState` and `EpochRun`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# (logits, y, model) -> scalar training loss
LossFn = Callable[[torch.Tensor, torch.Tensor, nn.Module], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """The default training loss (mean cross-entropy), the one validation always reports."""
    return nn.functional.cross_entropy(logits, y)


@dataclass
class TrainState:
    """What a method's step sees besides the model, the batch and the step number.

    optimizer / schedule: the method's, when it declares them (None otherwise).
    loss: the cell's training loss (the method's `loss`, else cross-entropy).
    cfg: the cell's validated config; generator: the method's own random stream (seeded from the
        cell's method seed, independent of data order and initialisation).
    extra: the method's own state, filled by its `init_state` hook and free for its step to update.
    next_batch: draws the next training batch of the cell's data-order stream (augmented when the cell
        augments); a step that consumes more than its batch calls it, and the images count against the
        epoch's budget.
    """

    optimizer: torch.optim.Optimizer | None
    loss: LossFn
    next_batch: Callable[[], Batch]
    cfg: Any = None
    generator: torch.Generator | None = None
    schedule: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def declared_evaluations(optimizer: torch.optim.Optimizer | None) -> int | None:
    """Closure calls per step of a gradient-free optimizer, each on a fresh minibatch (NES: its population).

    Gradient methods return None: their closure re-evaluates the step's own batch however often the
    optimizer calls it (SAM calls it twice). A gradient-free optimizer must declare the number, because
    its image budget depends on it.
    """
    if optimizer is None or not getattr(optimizer, "gradient_free", False):
        return None
    n = getattr(optimizer, "evaluations_per_step", None)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(
            f"{type(optimizer).__name__} is gradient-free but does not declare evaluations_per_step "
            "(closure calls per step), which the image budget needs"
        )
    return n


def closure_step(model: nn.Module, batch: Batch, state: TrainState, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One optimizer step through a loss closure; returns (the step's loss, logits of its first forward).

    The loss reported is the first evaluation's (before the update, as a plain loop reports it); a
    gradient-free optimizer evaluates perturbed models only, so it reports the mean over its
    evaluations and no logits (no clean training accuracy).
    """
    optimizer = state.optimizer
    if optimizer is None:
        raise ValueError("closure_step needs an optimizer; a method without one brings its own step")
    evaluations = declared_evaluations(optimizer)
    losses: list[torch.Tensor] = []
    first_logits: list[torch.Tensor] = []

    def closure() -> torch.Tensor:
        xb, yb = batch if not losses or evaluations is None else state.next_batch()
        if evaluations is not None:
            with torch.no_grad():
                loss = state.loss(model(xb), yb, model)
        else:
            optimizer.zero_grad(set_to_none=True)
            with torch.enable_grad():
                logits = model(xb)
                loss = state.loss(logits, yb, model)
                loss.backward()
            if not first_logits:
                first_logits.append(logits.detach())
        losses.append(loss.detach())
        return loss

    optimizer.step(closure)
    if not losses:
        raise RuntimeError(
            f"{type(optimizer).__name__}.step(closure) returned without calling the closure: seedbench passes every "
            "optimizer a loss closure (zero grads, forward, backward, return the loss) and computes no gradient "
            "otherwise; call it in step, as torch.optim.SGD does"
        )
    if evaluations is not None:
        if len(losses) != evaluations:
            raise RuntimeError(f"{type(optimizer).__name__} called the closure {len(losses)} times in one step, not the {evaluations} it declares")
        return torch.stack(losses).mean(), None
    return losses[0], first_logits[0]


class EpochRun:
    """One epoch of a cell: its number, its budget of steps, and `step()`, which runs one accounted step.

    A method's own `epoch` hook receives this; the default epoch calls `step()` `steps` times. Between
    steps a phased method may switch what it trains (freeze layers, change the loss, swap optimizers in
    state.extra); the budget stays the loop's, so every method of a comparison sees the same data.
    """

    def __init__(self, model: nn.Module, state: TrainState, epoch: int, steps: int, run_step: Callable[[], None]):
        self.model, self.state, self.epoch, self.steps = model, state, epoch, steps
        self.steps_done = 0
        self._run_step = run_step

    def step(self) -> None:
        if self.steps_done >= self.steps:
            raise RuntimeError(f"epoch {self.epoch} has a budget of {self.steps} steps; the method's epoch hook asked for more")
        self._run_step()
        self.steps_done += 1


def default_epoch(run: EpochRun) -> None:
    for _ in range(run.steps):
        run.step()
