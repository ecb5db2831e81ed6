"""Typed run configurations, shared by the library, the catalogue and the machinable components.

They live in the library (not in components/) so that machinable.yaml can be validated - unknown
keys and wrong value types - without importing machinable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrialConfig(BaseModel):
    """What every method's run needs: the cell of the grid and the training budget."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = "fc"
    dataset: str = "digits"
    seed: int = Field(0, ge=0, description="the run seed; every random stream derives from it")
    init_seed: int | None = Field(None, ge=0, description="overrides the seed of the weight-init stream")
    data_seed: int | None = Field(None, ge=0, description="overrides the seed of the data-order stream")
    augment_seed: int | None = Field(None, ge=0, description="overrides the seed of the augmentation stream")
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float | None = Field(None, gt=0, description="None: take it from machinable.yaml's learning_rates")
    lr_table: str = "default"
    val_size: int | None = Field(None, ge=0, description="None: the dataset's default hold-out")
    limit_train: int | None = Field(None, ge=1, description="train on the first N training images only")
    augment: bool = False
    init: str = Field("xavier_uniform", description="base weight initializer (Keras default: Glorot-uniform)")
    stabilize: bool = False
    rewire: bool = False
    data_dir: str | None = None
    device: str = "auto"
    num_threads: int | None = Field(None, ge=1, description="torch threads; None: the worker's CPU share")
    diverge_stop: bool = True
    # scheduling resources (used by the engines, not by training)
    num_cpus: float = Field(1, gt=0)
    num_gpus: float = Field(0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)


class SGDConfig(TrialConfig):
    method: Literal["sgd"] = "sgd"
    momentum: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)


METHOD_CONFIGS: dict[str, type[TrialConfig]] = {"sgd": SGDConfig}


def register_method_config(name: str, config: type[TrialConfig]) -> None:
    METHOD_CONFIGS[name] = config
