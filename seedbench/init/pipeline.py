"""Model-level initialization: base init -> stabilize? -> rewire? for every Conv/Linear weight.

One function so that every arm of a study (baseline, +stabilize, +rewire, both) goes through the same
code and the same random stream, differing only in its flags. Layers are visited in `model.modules()`
order, so a seed fixes every layer's weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seedbench.init.baselines import GeneratorLike, default_, default_bias_, get_initializer, resolve_generator
from seedbench.init.pa_rewire import pa_rewire_
from seedbench.init.stabilize import _seeded_calls, stabilize_strength_

DEFAULT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def init_model_(
    model: nn.Module,
    base: str | Callable[..., torch.Tensor] = "xavier_uniform",
    stabilize: bool = False,
    rewire: bool = False,
    generator: GeneratorLike = None,
    tries: int = 100,
    layer_types: tuple[type[nn.Module], ...] = DEFAULT_LAYERS,
) -> nn.Module:
    """Initialise every `layer_types` weight of `model` in place and return the model.

    base: a registered initializer name or an init callable. With `stabilize` the weight is the best of
    `tries` draws of `base` (so no separate base draw is made); with `rewire` it is then PA-rewired.
    Biases are zeroed, except with base="default", where they get torch's default bias init, as the
    framework would. `generator`: a torch.Generator, an int seed (one generator per device is derived
    from it), or None for torch's global RNG.
    """
    base_fn = get_initializer(base) if isinstance(base, str) else base
    generators = _PerDevice(generator)
    seen: set[int] = set()
    with torch.no_grad():
        for name, module in model.named_modules():
            weight = getattr(module, "weight", None) if isinstance(module, layer_types) else None
            if weight is None or id(weight) in seen:  # tied weights are initialised once
                continue
            if isinstance(weight, nn.parameter.UninitializedParameter):
                raise ValueError(f"layer {name!r} is lazy and not materialised yet; run one forward pass first")
            seen.add(id(weight))
            gen = generators.get(weight.device)
            if stabilize:
                stabilize_strength_(weight, base_fn, tries=tries, generator=gen)
            else:
                with _seeded_calls(base_fn, gen) as draw:
                    draw(weight)
            if rewire:
                pa_rewire_(weight, gen)
            bias = getattr(module, "bias", None)
            if bias is not None:
                if base_fn is default_:
                    default_bias_(bias, weight, gen)
                else:
                    bias.zero_()
    return model


class _PerDevice:
    """An int seed becomes one generator per device, created on first use (models may span devices)."""

    def __init__(self, generator: GeneratorLike):
        self._generator = generator
        self._by_device: dict[torch.device, torch.Generator | None] = {}

    def get(self, device: torch.device) -> torch.Generator | None:
        if device not in self._by_device:
            self._by_device[device] = resolve_generator(self._generator, device)
        return self._by_device[device]
