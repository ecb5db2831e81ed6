"""Typed run configurations: the science of a cell (`TrialConfig`) and where it runs (`Placement`).

The two are separate on purpose. A cell's identity - the key that decides whether a finished run can
be reused - is its method plus its TrialConfig: what was trained, on what, for how long. Placement
(data directory, device, threads, scheduler resources) says where and how fast, and the same cell
moved from a laptop to a GPU cluster, or pointed at another copy of the same data, is the same cell.

Every method extends TrialConfig with its own keys (see seedbench.methods). Nothing here imports
torch or machinable, so a sweep is validated on the driver before any worker exists.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    lr: float | None = Field(None, gt=0, description="None: the method's default for this model and dataset")
    lr_table: str = Field("default", description="which of the method's learning-rate tables fills a missing lr")
    val_size: int | None = Field(None, ge=0, description="None: the dataset's default hold-out")
    limit_train: int | None = Field(None, ge=1, description="train on the first N training images only")
    augment: bool = False
    # candidate causes of the SGD gap to the published Table 1 (docs/reproduction.md): each defaults to
    # seedbench's behaviour, so a cell that does not set them keeps its identity
    augment_clip: bool = Field(False, description="clip augmented pixels back to [0, 1] after the brightness offset (default: not clipped)")
    augment_pad: Literal["zeros", "reflect", "replicate"] = Field("zeros", description="how the random crop pads the image (default: zeros)")
    val_split: Literal["fixed", "block"] = Field(
        "fixed",
        description="fixed: one permutation for every run; block: a contiguous block at an offset drawn from the run's data seed (the reference)",
    )
    image_size: int | None = Field(None, ge=8, description="resize images to this square size (Sup-Walsh: 64)")
    grayscale: bool = Field(False, description="convert colour images to one channel (Sup-Walsh protocol)")
    init: str | None = Field(None, description="base weight initializer; None: the model's own default")
    stabilize: bool = Field(False, description="best of `stabilize_tries` draws by strength variance")
    stabilize_tries: int = Field(100, ge=1)
    rewire: bool = Field(False, description="PA-rewire every Conv/Linear weight after the base init")
    stop_rule: Literal["accuracy", "nan", "none"] | None = Field(
        None, description="early stop: 'accuracy' (NaN, val loss > 1000, low accuracy), 'nan' (NaN only), 'none'; None: the method's"
    )
    stop_min_acc: float = Field(0.15, ge=0, le=1, description="the accuracy rule's threshold")
    stop_acc_after_epoch: int = Field(4, ge=0, description="the accuracy rule applies after this epoch (reference: epoch > 4)")
    framework: Literal["torch", "tensorflow"] = Field("torch", description="which framework trains the cell")
    label: str | None = Field(None, description="a free-form arm label for reports (part of the identity)")

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        """inf and nan pass pydantic's bounds for some fields (lr=.inf is > 0): refuse them everywhere."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class Placement(BaseModel):
    """Where and with what a cell runs. Not part of a cell's identity."""

    model_config = ConfigDict(extra="forbid")

    data_dir: str | None = Field(None, description="directory holding mnist/, fmnist/, cifar10/ (default: $SEEDBENCH_DATA)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    num_threads: int | None = Field(None, ge=1, description="torch threads; None: the worker's CPU share")
    num_cpus: float = Field(1, gt=0)
    num_gpus: float = Field(0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
    checkpoint_every: int = Field(1, ge=0, description="save the cell's training state every N epochs (0: never); a killed cell resumes there")
    keep_checkpoint: bool = Field(False, description="keep the last checkpoint when the cell ends (removed by default)")
    slurm: dict[str, str | int | float] = Field(
        default_factory=dict, description="Slurm options for --engine slurm, e.g. {partition: gpu, time: 120} (docs/cluster.md)"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("use auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("num_cpus", "num_gpus")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


PLACEMENT_KEYS = frozenset(Placement.model_fields)


def split_placement(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A flat patch (a preset, --set pairs) -> (science keys, placement keys)."""
    science = {k: v for k, v in values.items() if k not in PLACEMENT_KEYS}
    placement = {k: v for k, v in values.items() if k in PLACEMENT_KEYS}
    return science, placement


# What a driver hands a worker through the task's environment (not the config, so not the identity).
PLACEMENT_ENV = "SEEDBENCH_PLACEMENT"  # the cell's Placement as JSON
DEVICE_ENV = "SEEDBENCH_DEVICE"  # the device the engine assigned ("cuda" for a GPU cell, else "cpu")
PLUGIN_ENV = "SEEDBENCH_PLUGINS"  # the sweep's plugins, file sources included (seedbench.registry)
