"""A training method as one declaration: every fact seedbench knows about it lives here.

    register_method(Method(
        name="signsgd",
        config=SignSGDConfig,                                  # a TrialConfig subclass
        optimizer=lambda params, lr, cfg, seed: SignSGD(params, lr=lr),
        learning_rates={"default": {"*": 1e-3}},
    ))

A method may own any part of training, each part optional (docs/extending.md shows each with a
runnable example):

    initialize(model, cfg, generator)        changes the freshly initialised weights in place
    prepare(cfg, model, data, device, seeds) changes the model before training (pretraining)
    optimizer(params, lr, cfg, seed)         a torch.optim.Optimizer; its step always gets a closure
    schedule(optimizer, cfg, steps_per_epoch) an LR scheduler, stepped per step or per epoch
    loss(cfg)                                (logits, y, model) -> the training loss
    init_state(state, model)                 fills state.extra, the method's own state
    step(model, batch, state, step)          its own training step; returns the loss
    epoch(run)                               its own epoch (phases): calls run.step() run.steps times

The loop (seedbench/train/loop.py) calls these and nothing else, so the seven built-in methods
(seedbench/methods/sgd.py, random_bases.py, sup_walsh.py) are declared exactly like a plugin's, and a
method a researcher writes in a file of their own is a peer of the built-ins.

The hooks are plain functions rather than a class hierarchy or an event bus: a method that only
changes the optimizer writes one lambda, and the order in which the loop calls the hooks is written
once, in the loop, where a reader can see it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from seedbench.config import TrialConfig
from seedbench.errors import ConfigError

if TYPE_CHECKING:  # the driver validates configs without torch
    import torch

    from seedbench.data import Dataset

# (params, lr, cfg, method_seed) -> a torch.optim.Optimizer
OptimizerFactory = Callable[["Iterable[torch.nn.Parameter]", float, Any, int], "torch.optim.Optimizer"]
# (cfg, model, data, device, seeds) -> a summary for the run record, or None
ModelHook = Callable[[Any, "torch.nn.Module", "Dataset", str, dict[str, int]], "dict[str, Any] | None"]
# (model, cfg, generator) -> None: changes the initialised weights in place, from the init stream
InitHook = Callable[["torch.nn.Module", Any, "torch.Generator"], None]
# (optimizer, cfg, steps_per_epoch) -> a torch.optim.lr_scheduler.LRScheduler
ScheduleFactory = Callable[["torch.optim.Optimizer", Any, int], Any]
# cfg -> (logits, y, model) -> scalar loss
LossFactory = Callable[[Any], Callable[["torch.Tensor", "torch.Tensor", "torch.nn.Module"], "torch.Tensor"]]
# (state, model) -> None: fills state.extra before the first step
StateHook = Callable[[Any, "torch.nn.Module"], None]
# (model, (x, y), state, step) -> the loss, or (loss, logits) for a training accuracy
StepFn = Callable[["torch.nn.Module", tuple[Any, Any], Any, int], Any]
# (run) -> None: one epoch, calling run.step() for each of run.steps steps
EpochFn = Callable[[Any], None]


@dataclass(frozen=True)
class Method:
    """Everything seedbench needs to know about one method (see the module docstring for the hooks).

    config: the pydantic TrialConfig subclass holding the method's own keys (validated on the driver).
    optimizer: builds the optimizer; `method_seed` is the cell's method stream (directions, noise).
        Its `step` is always called with a closure under PyTorch's contract (zero the grads, forward,
        backward, return the loss, as for torch.optim.LBFGS); an optimizer with `gradient_free = True`
        gets a closure without the backward pass, and one that declares `evaluations_per_step = n`
        gets a fresh minibatch on each of its n closure calls (NES). A method without an optimizer
        must bring its own `step`.
    schedule, schedule_interval: an LR scheduler over that optimizer, stepped after every step
        ("step") or every epoch ("epoch"); warmup is part of the schedule. The lr is logged per epoch.
    loss: the training loss (default: mean cross-entropy); validation always reports cross-entropy.
    initialize, prepare: hooks on the model before training (init stream / whole-model pretraining);
        prepare's return value is stored in the record as "prepare".
    init_state, step, epoch: the method's own state, training step and epoch (docs/extending.md).
    learning_rates: {table: {"model-dataset" or "*": lr}}; a cell without an lr takes
        table[cell], then "default"[cell], then "default"["*"].
    presets: named config patches for this method (`--preset momentum`).
    stop_rule: the early-stopping rule a cell uses unless it sets stop_rule itself.
    arm_keys: config keys that make a different arm when they differ from the default; the arm
        label in reports names them ("rbd bases=hadamard").
    packable: whether cells of this method may be trained as a vectorized pack of seeds.
    packed_step: "module:attr" of the class that steps a pack's optimizers at once (built-in SGD's
        VectorSGD); None steps each member's own optimizer on its own slice of the pack.
    pack_sizes: measured seeds per pack for `--pack auto`, {"model/device": K} (e.g. "fc/cpu": 16);
        combinations not listed train solo under auto.
    pack_note: why the method does not pack, shown when a user asks it to.
    tensorflow: "module:attr" of the method's TensorFlow implementation (seedbench/train/tf_runner.py
        describes the protocol); None: the method runs on torch only.
    reference: the baseline other methods are compared with when a report names none (SGD).
    tunable: the hyperparameters `seedbench tune` may search and their ranges, {config key: range}
        (seedbench/methods/space.py); a study may override them.
    """

    name: str
    config: type[TrialConfig]
    optimizer: OptimizerFactory | None = None
    schedule: ScheduleFactory | None = None
    schedule_interval: Literal["step", "epoch"] = "step"
    loss: LossFactory | None = None
    initialize: InitHook | None = None
    prepare: ModelHook | None = None
    init_state: StateHook | None = None
    step: StepFn | None = None
    epoch: EpochFn | None = None
    learning_rates: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stop_rule: str = "accuracy"
    arm_keys: tuple[str, ...] = ()
    packable: bool = False
    packed_step: str | None = None
    pack_sizes: Mapping[str, int] = field(default_factory=dict)
    pack_note: str = ""
    tensorflow: str | None = None
    reference: bool = False
    tunable: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"method {self.name!r}: the name must be a Python identifier (letters, digits, _)")
        if not (isinstance(self.config, type) and issubclass(self.config, TrialConfig)):
            raise ConfigError(f"method {self.name!r}: config must be a subclass of seedbench.TrialConfig")
        if self.stop_rule not in ("accuracy", "nan", "none"):
            raise ConfigError(f"method {self.name!r}: stop_rule must be accuracy, nan or none")
        if self.schedule_interval not in ("step", "epoch"):
            raise ConfigError(f"method {self.name!r}: schedule_interval must be 'step' or 'epoch'")
        if self.optimizer is None and self.step is None:
            raise ConfigError(f"method {self.name!r}: give an optimizer, or a step that trains without one")
        if self.schedule is not None and self.optimizer is None:
            raise ConfigError(f"method {self.name!r}: a schedule needs an optimizer whose lr it sets")
        for hook in ("optimizer", "schedule", "loss", "initialize", "prepare", "init_state", "step", "epoch"):
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise ConfigError(f"method {self.name!r}: {hook} must be a function, got {type(value).__name__}")
        if self.packable:
            own = [h for h in ("schedule", "loss", "init_state", "step", "epoch") if getattr(self, h) is not None]
            if own:
                raise ConfigError(
                    f"method {self.name!r}: packable=True covers an optimizer with init/prepare hooks; a pack cannot "
                    f"vectorize its own {', '.join(own)} yet: set packable=False"
                )
        for key, size in self.pack_sizes.items():
            if key.count("/") != 1 or isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"method {self.name!r}: pack_sizes maps 'model/device' to an integer >= 1, got {key!r}: {size!r}")
        for ref in (self.packed_step, self.tensorflow):
            if ref is not None and (not isinstance(ref, str) or ref.count(":") != 1):
                raise ConfigError(f"method {self.name!r}: packed_step and tensorflow name an object as 'module:attr', got {ref!r}")

    @property
    def frameworks(self) -> tuple[str, ...]:
        """The frameworks that can train this method: torch always, TensorFlow when it brings an implementation."""
        return ("torch", "tensorflow") if self.tensorflow else ("torch",)

    def pack_size(self, model: str, device: str) -> int:
        """Seeds per pack under `--pack auto` on a device kind ("cpu", "cuda"): measured, else 1 (solo)."""
        if not self.packable:
            return 1
        return int(self.pack_sizes.get(f"{model}/{device.split(':', 1)[0]}", 1))

    def learning_rate(self, table: str, model: str, dataset: str) -> float:
        """The default lr of this method for a model-dataset cell (see `learning_rates`).

        A table the method lacks falls through to its "default" table: presets such as ~table1 name a
        table for every method, and a method the study did not tune keeps its own default.
        """
        cell = f"{model}-{dataset}"
        for name in (table, "default"):
            rates = self.learning_rates.get(name, {})
            if cell in rates:
                return float(rates[cell])
        fallback = self.learning_rates.get("default", {}).get("*")
        if fallback is None:
            raise ConfigError(f"no learning rate for {self.name} on {cell}: pass --set lr=..., or add it to the method's learning_rates")
        return float(fallback)

    def resolve(self, values: Mapping[str, Any]) -> TrialConfig:
        """Validate a flat patch into this method's config, filling lr from the method's tables."""
        from pydantic import ValidationError

        try:
            cfg = self.config(**dict(values))
        except ValidationError as exc:
            raise ConfigError(f"method {self.name}: {_one_line(exc)}") from None
        updates: dict[str, Any] = {}
        if cfg.lr is None:
            updates["lr"] = self.learning_rate(cfg.lr_table, cfg.model, cfg.dataset)
        if cfg.stop_rule is None:
            updates["stop_rule"] = self.stop_rule
        if cfg.framework not in self.frameworks:
            raise ConfigError(
                f"method {self.name} has no {cfg.framework} runner (it runs on: {', '.join(self.frameworks)}); drop framework={cfg.framework}"
            )
        return cfg.model_copy(update=updates) if updates else cfg

    def arm_label(self, cfg: TrialConfig, model_default_init: str | None = None) -> str:
        """What the arm did, in words: the method, its non-default variant keys and its init pipeline.

        An lr other than the method's table value for the cell is part of the arm: a default and a tuned
        lr in one store are two arms, never one arm of twice the seeds and a mixed spread.
        """
        defaults = self.config.model_fields
        parts = [self.name]
        if cfg.lr is not None:
            try:
                table = self.learning_rate(cfg.lr_table, cfg.model, cfg.dataset)
            except ConfigError:
                table = None
            if table is None or not math.isclose(cfg.lr, table, rel_tol=1e-9):
                parts.append(f"lr={cfg.lr:g}")
        for key in self.arm_keys:
            value = getattr(cfg, key)
            if value != defaults[key].default:
                parts.append(f"{key}={value}")
        if cfg.init is not None and cfg.init != model_default_init:
            parts.append(f"init={cfg.init}")
        if cfg.stabilize:
            parts.append("+stabilize")
        if cfg.rewire:
            parts.append("+rewire")
        if cfg.framework != "torch":
            parts.append(f"[{cfg.framework}]")
        if cfg.label:
            parts.append(f"({cfg.label})")
        return " ".join(parts)


def _one_line(exc: Any) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown config key {key!r}")
        else:
            parts.append(f"{key}={err.get('input')!r}: {err['msg']}")
    return "; ".join(parts)
