"""A method with its own training step: mixup, as a seedbench plugin.

    seedbench sweep --plugin examples/mixup.py --method mixup,sgd --model fc --dataset digits --seeds 0-4

`step(model, batch, state, step)` is the whole update, like AlgoPerf's `update_params`: it receives the
model, the batch (x, y), the run's state (its optimizer, loss, schedule, the method's own random
generator and `state.extra`) and the step number, and returns the loss it trained on. Here each batch
is blended with a shuffled copy of itself, x = a x_i + (1 - a) x_j with a ~ Beta(alpha, alpha), and
the loss blends the two labels' cross-entropies alike (Zhang et al., 2018). The mixing draws come from
`state.generator`, the cell's own method stream, so a seed replays them exactly.
"""

from __future__ import annotations

import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method


class MixupConfig(TrialConfig):
    alpha: float = Field(0.2, gt=0, description="Beta(alpha, alpha) draws the mixing weight")
    momentum: float = Field(0.0, ge=0)


def init_state(state, model: torch.nn.Module) -> None:
    """The method's own state lives in state.extra: here, a count of mixed steps, for the example's test."""
    state.extra["mixed_steps"] = 0


def mixup_step(model: torch.nn.Module, batch, state, step: int) -> torch.Tensor:
    x, y = batch
    alpha = state.cfg.alpha
    # torch's Beta distribution takes no generator: invert the CDF of a uniform drawn from the cell's own
    a = beta_quantile(float(torch.rand((), generator=state.generator)), alpha)
    order = torch.randperm(len(x), generator=state.generator).to(x.device)
    mixed = a * x + (1 - a) * x[order]
    state.optimizer.zero_grad(set_to_none=True)
    logits = model(mixed)
    loss = a * state.loss(logits, y, model) + (1 - a) * state.loss(logits, y[order], model)
    loss.backward()
    state.optimizer.step()
    state.extra["mixed_steps"] += 1
    return loss.detach()


def beta_quantile(u: float, alpha: float) -> float:
    """The Beta(alpha, alpha) value at cumulative probability u (scipy's inverse CDF)."""
    from scipy.stats import beta

    return float(beta.ppf(u, alpha, alpha))


register_method(
    Method(
        name="mixup",
        config=MixupConfig,
        optimizer=lambda params, lr, cfg, seed: torch.optim.SGD(params, lr=lr, momentum=cfg.momentum),
        init_state=init_state,
        step=mixup_step,
        learning_rates={"default": {"fc-digits": 0.05, "*": 0.05}},
        arm_keys=("alpha", "momentum"),
        description="mixup: each batch blended with a shuffled copy of itself, labels blended alike",
    )
)
