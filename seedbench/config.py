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
    image_size: int | None = Field(None, ge=8, description="resize images to this square size (Sup-Walsh: 64)")
    grayscale: bool = Field(False, description="convert colour images to one channel (Sup-Walsh protocol)")
    init: str = Field("xavier_uniform", description="base weight initializer (Keras default: Glorot-uniform)")
    stabilize: bool = Field(False, description="best of `stabilize_tries` draws by strength variance")
    stabilize_tries: int = Field(100, ge=1)
    rewire: bool = Field(False, description="PA-rewire every Conv/Linear weight after the base init")
    data_dir: str | None = None
    device: str = "auto"
    num_threads: int | None = Field(None, ge=1, description="torch threads; None: the worker's CPU share")
    diverge_stop: bool = True
    label: str | None = Field(None, description="a free-form arm label for reports (part of the identity)")
    # scheduling resources (used by the engines, not by training)
    num_cpus: float = Field(1, gt=0)
    num_gpus: float = Field(0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)


class SGDConfig(TrialConfig):
    method: Literal["sgd"] = "sgd"
    momentum: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)


class RandomBasesConfig(TrialConfig):
    """Shared by RBD and FPD (METHODS.md sections 3-4)."""

    dims: int = Field(250, ge=1, description="subspace dimension d")
    distribution: Literal["normal", "uniform", "bernoulli"] = "normal"
    normalization: Literal["auto", "unbiased"] = "auto"
    compartments: Literal["network", "layer"] = "network"
    chunk: int = Field(50, ge=1, description="directions generated at a time (memory: O(D * chunk))")


class RBDConfig(RandomBasesConfig):
    method: Literal["rbd"] = "rbd"
    bases: Literal["gaussian", "hadamard"] = "gaussian"


class FPDConfig(RandomBasesConfig):
    method: Literal["fpd"] = "fpd"


class NESConfig(TrialConfig):
    method: Literal["nes"] = "nes"
    dims: int = Field(250, ge=2, description="population size")
    sigma: float = Field(0.01, gt=0)
    antithetic: bool = False
    distribution: Literal["normal", "uniform", "bernoulli"] = "normal"
    normalization: Literal["auto", "none"] = "auto"
    chunk: int = Field(50, ge=1)


class PARewiringConfig(SGDConfig):
    """An initializer study arm: base init -> (stabilize) -> PA rewiring, then SGD training."""

    method: Literal["pa_rewiring"] = "pa_rewiring"  # type: ignore[assignment]
    init: str = "orthogonal"
    rewire: bool = True


class StabilizedStrengthConfig(SGDConfig):
    method: Literal["stabilized_strength"] = "stabilized_strength"  # type: ignore[assignment]
    init: str = "orthogonal"
    stabilize: bool = True


class SupWalshConfig(SGDConfig):
    """Sup-Walsh pretraining (METHODS.md section 10), then SGD main training."""

    method: Literal["sup_walsh"] = "sup_walsh"  # type: ignore[assignment]
    supwalsh: bool = Field(True, description="False: the 'without' arm (same main training)")
    pretrain_epochs: int = Field(2, ge=0)
    pretrain_lr: float = Field(3e-5, gt=0)
    pretrain_batch: int = Field(200, ge=10)
    pretrain_inputs: Literal["tsne", "random"] = "tsne"
    codes: Literal["walsh", "onehot", "random"] = "walsh"
    keep: Literal["final", "best"] = "final"
    control: bool = Field(False, description="compute-matched control: same extra Adam steps on noise, no Sup-Walsh")
    pretrain_max_steps: int | None = Field(None, ge=1, description="cap pretraining steps (quick studies)")


METHOD_CONFIGS: dict[str, type[TrialConfig]] = {
    "sgd": SGDConfig,
    "rbd": RBDConfig,
    "fpd": FPDConfig,
    "nes": NESConfig,
    "pa_rewiring": PARewiringConfig,
    "stabilized_strength": StabilizedStrengthConfig,
    "sup_walsh": SupWalshConfig,
}

# Methods whose optimizer is SGD: they take SGD's learning rates from machinable.yaml.
LR_ALIASES = {"pa_rewiring": "sgd", "stabilized_strength": "sgd", "sup_walsh": "sgd"}


def register_method_config(name: str, config: type[TrialConfig]) -> None:
    METHOD_CONFIGS[name] = config
