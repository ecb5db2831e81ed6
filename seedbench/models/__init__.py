"""Model registry: the study networks (fc, cnn) and the model zoo, all built as `build(in_shape, classes)`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from seedbench.errors import ConfigError
from seedbench.models.fc_cnn import CNN, FC, keras_default_init_

Builder = Callable[..., nn.Module]


def registry() -> dict[str, Builder]:
    models: dict[str, Builder] = {"fc": FC, "cnn": CNN}
    try:
        from seedbench.models.zoo import ZOO
    except ImportError:  # the zoo is optional while it is being written
        ZOO = {}
    models.update(ZOO)
    return models


def build_model(name: str, in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    models = registry()
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(sorted(models))}")
    return models[name](tuple(in_shape), num_classes)


def count_parameters(model: nn.Module) -> int:
    """D: the number of trainable parameters, the dimension the random-bases methods work in."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["CNN", "FC", "build_model", "count_parameters", "keras_default_init_", "registry"]
