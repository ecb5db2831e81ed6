"""Can this cell train in TensorFlow? Asked on the driver when a sweep is planned, before anything runs.

Nothing here imports TensorFlow or torch: the answer comes from what the registries declare (a model's
`tensorflow` Keras builder, a method's `tensorflow` implementation) and from the implementation's own
`supports(cfg)`, whose module imports TensorFlow only when an update is built (seedbench/train/tf_runner.py
describes the protocol). So a refusal is one line on the driver, and the runner asks the same questions
again for callers of the Python API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from seedbench.errors import ConfigError

if TYPE_CHECKING:
    from seedbench.config import TrialConfig
    from seedbench.methods.base import Method


def tensorflow_factory(method: Method) -> Callable[..., Any]:
    """The factory `Method.tensorflow` names ("module:attr"), imported now."""
    from seedbench.registry import _import_ref

    if method.tensorflow is None:
        raise ConfigError(
            f"method {method.name} has no TensorFlow implementation (it runs on: {', '.join(method.frameworks)}); drop framework=tensorflow"
        )
    try:
        factory = _import_ref(method.tensorflow)
    except (ImportError, AttributeError, KeyError) as exc:
        raise ConfigError(f"method {method.name}: its tensorflow={method.tensorflow!r} cannot be imported ({exc}); fix the reference") from None
    if not callable(factory):
        raise ConfigError(
            f"method {method.name}: tensorflow={method.tensorflow!r} is a {type(factory).__name__}, not a factory; name a function or class"
        )
    return factory


def tensorflow_refusal(method: Method, cfg: TrialConfig) -> str | None:
    """Why `cfg` cannot train with `method` in TensorFlow (one line naming the fix), or None when it can."""
    from seedbench.registry import get_model, model_names

    if get_model(cfg.model).tensorflow is None:
        keras = [name for name in model_names() if get_model(name).tensorflow is not None]
        return (
            f"framework=tensorflow needs a model with a Keras counterpart ({', '.join(keras)}), and {cfg.model} has none; "
            f"drop framework or use --model {','.join(keras)}"
        )
    if method.prepare is not None:  # the TF run starts from the torch cell's initial weights, unprepared
        return f"method {method.name} prepares its model on torch (its prepare hook); use framework=torch"
    supports = getattr(tensorflow_factory(method), "supports", None)
    return supports(cfg) if supports is not None else None


__all__ = ["tensorflow_factory", "tensorflow_refusal"]
