"""A training method as one declaration: its config, its optimizer, an optional model hook, its defaults.

    register_method(Method(
        name="signsgd",
        config=SignSGDConfig,                                  # a TrialConfig subclass
        optimizer=lambda params, lr, cfg, seed: SignSGD(params, lr=lr),
        learning_rates={"default": {"*": 1e-3}},
    ))

The seven built-in methods are declared exactly like this (seedbench/methods/sgd.py,
random_bases.py, sup_walsh.py), so a method a researcher writes in a file of their own is a peer of
the built-ins: it runs in sweeps on every engine and appears in every report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seedbench.config import TrialConfig
from seedbench.errors import ConfigError

if TYPE_CHECKING:  # the driver validates configs without torch
    import torch

    from seedbench.data import Dataset

# (params, lr, cfg, method_seed) -> a torch.optim.Optimizer
OptimizerFactory = Callable[["Iterable[torch.nn.Parameter]", float, Any, int], "torch.optim.Optimizer"]
# (cfg, model, data, device, seeds) -> a summary for the run record, or None
ModelHook = Callable[[Any, "torch.nn.Module", "Dataset", str, dict[str, int]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Method:
    """Everything seedbench needs to know about one method.

    config: the pydantic TrialConfig subclass holding the method's own keys (validated on the driver).
    optimizer: builds the optimizer the shared training loop steps with; `method_seed` is the
        cell's method stream (directions, noise).
    prepare: optional hook that changes the model after initialisation and before training
        (pretraining such as Sup-Walsh); its return value is stored in the record as "prepare".
    learning_rates: {table: {"model-dataset" or "*": lr}}; a cell without an lr takes
        table[cell], then "default"[cell], then "default"["*"].
    presets: named config patches for this method (`--preset momentum`).
    stop_rule: the early-stopping rule a cell uses unless it sets stop_rule itself.
    arm_keys: config keys that make a different arm when they differ from the default; the arm
        label in reports names them ("rbd bases=hadamard").
    packable: whether cells of this method may be trained as a vectorized pack of seeds.
    frameworks: the frameworks whose runner implements this method.
    """

    name: str
    config: type[TrialConfig]
    optimizer: OptimizerFactory
    prepare: ModelHook | None = None
    learning_rates: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stop_rule: str = "accuracy"
    arm_keys: tuple[str, ...] = ()
    packable: bool = False
    frameworks: tuple[str, ...] = ("torch",)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"method name {self.name!r} must be a Python identifier (letters, digits, _)")
        if not (isinstance(self.config, type) and issubclass(self.config, TrialConfig)):
            raise ConfigError(f"method {self.name!r}: config must be a subclass of seedbench.TrialConfig")
        if self.stop_rule not in ("accuracy", "nan", "none"):
            raise ConfigError(f"method {self.name!r}: stop_rule must be accuracy, nan or none")

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
        """What the arm did, in words: the method, its non-default variant keys and its init pipeline."""
        defaults = self.config.model_fields
        parts = [self.name]
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
