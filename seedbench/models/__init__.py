"""Models: the study networks (fc, cnn), the Sup-Walsh zoo and any plugin's, all `build(in_shape, classes)`.

Which models exist is the registry's business (seedbench.registry; the built-ins are declared in
seedbench.models.builtin). Importing this package stays torch-free, so the driver can read the
declarations (seedbench.models.spec, seedbench.models.builtin) without torch; the torch-backed names
below are imported on first use.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"CNN": "seedbench.models.fc_cnn", "FC": "seedbench.models.fc_cnn", "keras_default_init_": "seedbench.models.fc_cnn"}

__all__ = ["CNN", "FC", "build_model", "count_parameters", "keras_default_init_"]


def build_model(name: str, in_shape: tuple[int, int, int], num_classes: int = 10) -> Any:
    """The registered model `name` (a built-in or a plugin's) for inputs of `in_shape` (C, H, W)."""
    from seedbench.registry import get_model

    return get_model(name).builder()(tuple(in_shape), num_classes)


def count_parameters(model: Any) -> int:
    """D: the number of trainable parameters, the dimension the random-bases methods work in."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seedbench.models' has no attribute {name!r}")
