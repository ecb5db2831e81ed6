"""RBD, FPD and NES: the random-bases study's methods (docs/methods.md, "Random bases")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from seedbench.config import TrialConfig
from seedbench.methods.base import Method
from seedbench.methods.space import log_uniform

# RBD and FPD share the study's tuned rates; NES has no published rate and uses RBD's (docs/methods.md).
TABLE1 = {"fc-mnist": 1.0, "fc-fmnist": 0.5, "fc-cifar10": 0.25, "cnn-mnist": 0.0625, "cnn-fmnist": 0.125, "cnn-cifar10": 0.125}
DEFAULT = {"fc-digits": 1.0, "cnn-digits": 0.25, "*": 0.25}
RATES = {"table1": TABLE1, "default": DEFAULT}
# `seedbench tune`: the published rates (0.0625-1.0) sit inside; a projected gradient step wants a larger lr than SGD
LR_RANGE = log_uniform(1e-2, 10.0)


class RandomBasesConfig(TrialConfig):
    dims: int = Field(250, ge=1, description="subspace dimension d")
    distribution: Literal["normal", "uniform", "bernoulli"] = "normal"
    normalization: Literal["auto", "unbiased"] = "auto"
    compartments: Literal["network", "layer"] = "network"
    chunk: int = Field(50, ge=1, description="directions generated at a time (memory: O(D * chunk))")


class RBDConfig(RandomBasesConfig):
    bases: Literal["gaussian", "hadamard"] = "gaussian"


class FPDConfig(RandomBasesConfig):
    pass


class NESConfig(TrialConfig):
    dims: int = Field(250, ge=2, description="population size")
    sigma: float = Field(0.01, gt=0)
    antithetic: bool = False
    distribution: Literal["normal", "uniform", "bernoulli"] = "normal"
    normalization: Literal["auto", "none"] = "auto"
    chunk: int = Field(50, ge=1)


def _options(cfg: TrialConfig, *keys: str) -> dict:
    return {k: getattr(cfg, k) for k in keys}


def rbd_optimizer(params, lr: float, cfg: RBDConfig, seed: int):
    from seedbench.optim import RBD

    return RBD(params, lr=lr, seed=seed, **_options(cfg, "dims", "distribution", "normalization", "chunk", "compartments", "bases"))


def fpd_optimizer(params, lr: float, cfg: FPDConfig, seed: int):
    from seedbench.optim import FPD

    return FPD(params, lr=lr, seed=seed, **_options(cfg, "dims", "distribution", "normalization", "chunk", "compartments"))


def nes_optimizer(params, lr: float, cfg: NESConfig, seed: int):
    from seedbench.optim import NES

    return NES(params, lr=lr, seed=seed, **_options(cfg, "dims", "distribution", "normalization", "chunk", "sigma", "antithetic"))


RBD = Method(
    name="rbd",
    config=RBDConfig,
    optimizer=rbd_optimizer,
    learning_rates=RATES,
    presets={"hadamard": {"bases": "hadamard"}, "layerwise": {"compartments": "layer"}},
    stop_rule="accuracy",
    arm_keys=("bases", "dims", "distribution", "normalization", "compartments"),
    packable=True,  # each member's own optimizer steps its slice of the pack
    tensorflow="seedbench.train.tf_methods:rbd",
    tunable={"lr": LR_RANGE},
    description="random bases descent: the gradient projected on d fresh random directions every step",
)
FPD = Method(
    name="fpd",
    config=FPDConfig,
    optimizer=fpd_optimizer,
    learning_rates=RATES,
    stop_rule="accuracy",
    arm_keys=("dims", "distribution", "normalization", "compartments"),
    packable=True,  # each member's own optimizer steps its slice of the pack
    tensorflow="seedbench.train.tf_methods:fpd",
    tunable={"lr": LR_RANGE},
    description="fixed projection descent: SGD in one fixed random d-dimensional subspace",
)
NES = Method(
    name="nes",
    config=NESConfig,
    optimizer=nes_optimizer,
    learning_rates=RATES,
    presets={"antithetic": {"antithetic": True}},
    stop_rule="nan",
    arm_keys=("dims", "sigma", "antithetic", "distribution", "normalization"),
    packable=True,  # each member's own optimizer steps its slice of the pack
    tensorflow="seedbench.train.tf_methods:nes",
    tunable={"lr": LR_RANGE, "sigma": log_uniform(1e-3, 0.1)},
    description="natural evolution strategies: rank-shaped fitness over a Gaussian population",
)
