"""Method name -> optimizer. The training loop is shared; a method is the optimizer it steps with."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from seedbench.config import TrialConfig
from seedbench.errors import ConfigError

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], float, TrialConfig, int], torch.optim.Optimizer]


def _sgd(params, lr: float, cfg: TrialConfig, seed: int) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)  # type: ignore[attr-defined]


def _random_bases(cls_name: str) -> OptimizerFactory:
    def factory(params, lr: float, cfg: TrialConfig, seed: int) -> torch.optim.Optimizer:
        from seedbench import optim

        options = {k: getattr(cfg, k) for k in ("dims", "distribution", "normalization", "chunk")}
        if cls_name in ("RBD", "FPD"):
            options["compartments"] = cfg.compartments  # type: ignore[attr-defined]
        if cls_name == "RBD":
            options["bases"] = cfg.bases  # type: ignore[attr-defined]
        if cls_name == "NES":
            options.update(sigma=cfg.sigma, antithetic=cfg.antithetic)  # type: ignore[attr-defined]
        return getattr(optim, cls_name)(params, lr=lr, seed=seed, **options)

    return factory


FACTORIES: dict[str, OptimizerFactory] = {
    "sgd": _sgd,
    "pa_rewiring": _sgd,
    "stabilized_strength": _sgd,
    "sup_walsh": _sgd,
    "rbd": _random_bases("RBD"),
    "fpd": _random_bases("FPD"),
    "nes": _random_bases("NES"),
}


def make_optimizer(params, lr: float, cfg: TrialConfig, seed: int) -> torch.optim.Optimizer:
    method = getattr(cfg, "method", None)
    if method not in FACTORIES:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(sorted(FACTORIES))}")
    return FACTORIES[method](params, lr, cfg, seed)
