"""Method name -> optimizer. The training loop is shared; a method is the optimizer it steps with."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from seedbench.config import SGDConfig, TrialConfig
from seedbench.errors import ConfigError

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], float, TrialConfig, int], torch.optim.Optimizer]


def _sgd(params, lr: float, cfg: TrialConfig, seed: int) -> torch.optim.Optimizer:
    assert isinstance(cfg, SGDConfig)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


FACTORIES: dict[str, OptimizerFactory] = {"sgd": _sgd}


def make_optimizer(params, lr: float, cfg: TrialConfig, seed: int) -> torch.optim.Optimizer:
    method = getattr(cfg, "method", None)
    if method not in FACTORIES:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(sorted(FACTORIES))}")
    return FACTORIES[method](params, lr, cfg, seed)
