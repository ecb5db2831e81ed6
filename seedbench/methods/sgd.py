"""SGD: the baseline every other method is measured against (docs/methods.md, "SGD")."""

from __future__ import annotations

from pydantic import Field

from seedbench.config import TrialConfig
from seedbench.methods.base import Method
from seedbench.methods.space import log_uniform, uniform

# The random-bases study's tuned rates (batch 32, single worker), docs/methods.md "Learning rates".
TABLE1 = {"fc-mnist": 0.125, "fc-fmnist": 0.25, "fc-cifar10": 0.0078125, "cnn-mnist": 0.03125, "cnn-fmnist": 0.0625, "cnn-cifar10": 0.015625}


class SGDConfig(TrialConfig):
    momentum: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)


def sgd_optimizer(params, lr: float, cfg: SGDConfig, seed: int):
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


SGD = Method(
    name="sgd",
    config=SGDConfig,
    optimizer=sgd_optimizer,
    learning_rates={"table1": TABLE1, "default": {"fc-digits": 0.05, "cnn-digits": 0.1, "*": 0.05}},
    presets={"momentum": {"momentum": 0.9}},
    stop_rule="accuracy",
    arm_keys=("momentum", "weight_decay"),
    packable=True,
    # one update over the stacked (K, ...) tensors is K independent SGD updates (seedbench/train/packed_optim.py)
    packed_step="seedbench.train.packed_optim:VectorSGD",
    # bench/bench_pack.py on a 2-core CPU: K = 16 gave 4.25x the seeds per hour of solo for the FC
    # (docs/benchmarks.md, "Seed packing"); the CNN did not pay, so it stays solo under --pack auto
    pack_sizes={"fc/cpu": 16},
    tensorflow="seedbench.train.tf_methods:sgd",
    reference=True,  # every other method is measured against it: the reports' default baseline
    # what `seedbench tune` searches (docs/tuning.md): lr over three decades around the table's rates
    tunable={"lr": log_uniform(1e-3, 1.0), "momentum": uniform(0.0, 0.99), "weight_decay": log_uniform(1e-6, 1e-2)},
    description="plain minibatch SGD (optional momentum and weight decay)",
)
