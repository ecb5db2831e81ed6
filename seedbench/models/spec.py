"""What a model is to seedbench: its builder and the facts it declares about itself (no torch).

A model is registered as a `ModelSpec`. Besides the builder, it carries what the driver needs to know
before anything is built, so that a sweep can be planned and checked without importing torch:

    default_init  the initialisation the builder leaves in place ("default": torch's own layer init)
    packable      whether seeds of it may be trained as one vectorized pack (no batch norm, no dropout)
    channels      the input channels it takes; None: any
    min_side      the smallest height and width it takes (it takes every size from there up); None:
                  not declared, and the driver builds it on torch's meta device to find out
    classes       a fixed number of outputs (a fixed head); None: as many as the dataset has classes
    tensorflow    "module:attr" of its Keras counterpart, `(in_shape, num_classes, init_seed) -> keras.Model`
    description   one line for `seedbench methods` and the docs

Built-in models are declared in seedbench/models/builtin.py, exactly as a plugin declares its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seedbench.errors import ConfigError


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class ModelSpec:
    """A model: `build(in_shape: (C, H, W), num_classes) -> torch.nn.Module` and its declared facts.

    `build` may be a callable or a "module:attribute" string, so the driver can check a model name
    without importing torch (see the module docstring for the facts).
    """

    name: str
    build: Callable[..., Any] | str
    default_init: str = "default"
    packable: bool = False
    description: str = ""
    channels: int | None = None
    min_side: int | None = None
    classes: int | None = None
    tensorflow: str | None = None

    def __post_init__(self) -> None:
        where = f"model {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip() or "," in self.name:
            raise ConfigError(f"model name {self.name!r} must be a non-empty string without commas or surrounding spaces; fix register_model")
        if not (callable(self.build) or (isinstance(self.build, str) and self.build.count(":") == 1)):
            raise ConfigError(f"{where}: build must be a callable or 'module:attr', got {self.build!r}; fix register_model")
        if not isinstance(self.default_init, str) or not self.default_init:
            raise ConfigError(f"{where}: default_init must name an initializer; fix register_model")
        for key, low in (("channels", 1), ("min_side", 1), ("classes", 2)):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ConfigError(f"{where}: {key}={value!r} must be an integer >= {low} or None; fix register_model")
        if self.tensorflow is not None and (not isinstance(self.tensorflow, str) or self.tensorflow.count(":") != 1):
            raise ConfigError(f"{where}: tensorflow names its Keras builder as 'module:attr', got {self.tensorflow!r}; fix register_model")
        if not isinstance(self.description, str) or "\n" in self.description:
            raise ConfigError(f"{where}: description must be one line of text; fix register_model")

    def builder(self) -> Callable[..., Any]:
        """The build function, imported now if it was given as "module:attr"."""
        if callable(self.build):
            return self.build
        from seedbench.registry import _import_ref

        return _import_ref(self.build)

    def keras_builder(self) -> Callable[..., Any]:
        """The Keras counterpart's builder; a ConfigError for a model without one."""
        if self.tensorflow is None:
            raise ConfigError(f"model {self.name} has no TensorFlow implementation; use framework=torch or a model that declares tensorflow=")
        from seedbench.registry import _import_ref

        return _import_ref(self.tensorflow)

    def facts(self) -> dict[str, Any]:
        """What the model declares, as `seedbench methods --format json` lists it."""
        return {
            "name": self.name,
            "description": self.description,
            "default_init": self.default_init,
            "packable": self.packable,
            "channels": self.channels,
            "min_side": self.min_side,
            "classes": self.classes,
            "frameworks": ["torch", "tensorflow"] if self.tensorflow else ["torch"],
        }

    @property
    def shape_declared(self) -> bool:
        """Whether the declared facts alone decide which inputs fit (then nothing is built to check)."""
        return self.min_side is not None

    def declared_misfit(self, in_shape: tuple[int, int, int], num_classes: int) -> tuple[str, str] | None:
        """(what does not fit, the fix) by the declared facts alone, or None when they raise no objection."""
        c, h, w = in_shape
        if self.channels is not None and c != self.channels:
            fix = "set grayscale=true or pick another model" if (c, self.channels) == (3, 1) else "pick another model"
            return f"it takes {self.channels}-channel inputs", fix
        if self.classes is not None and num_classes != self.classes:
            return f"it has a fixed head of {self.classes} classes, the dataset has {num_classes}", "pick another model"
        if self.min_side is not None and min(h, w) < self.min_side:
            side = max(self.min_side, 8)  # image_size takes 8 and up (TrialConfig)
            return f"it needs inputs of at least {self.min_side}x{self.min_side}", f"pick another model or set image_size={side}"
        return None
