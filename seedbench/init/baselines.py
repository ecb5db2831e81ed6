"""The baseline initializations of docs/methods.md, "Initializers", selectable by name.

Every initializer has the same calling convention, `fn(tensor, generator=None) -> tensor`, so that a
run config can name one and `stabilize_strength_` / `init_model_` can re-draw it with the run's own
random stream. `generator` may be a `torch.Generator`, an int seed, or None (torch's global RNG): an
int is accepted everywhere so a config value can be passed straight through.

Choices the sources leave open, made here once for every arm of a study:
- "normal"/"uniform" ("random initialization" in the Sup-Walsh README, parameters unpublished) use
  the classic small-random-numbers scale, std 0.01, with the uniform range matched to the same
  variance so the two differ only in shape. torch's own defaults (N(0, 1), U[0, 1)) would be
  all-positive or exploding and are no sensible baseline.
- Kaiming uses fan_in with the ReLU gain (the setting of the PA-rewiring study's reference numbers).
- "default" is what torch's Linear/ConvNd `reset_parameters` does to a weight (Kaiming-uniform with
  a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))), but drawn from the given generator so it is
  reproducible; `default_bias_` does the same for the bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral

import torch
from torch import nn

GeneratorLike = torch.Generator | int | None

RANDOM_STD = 0.01
_UNIFORM_BOUND = RANDOM_STD * math.sqrt(3.0)  # U(-b, b) has variance b^2 / 3


def resolve_generator(generator: GeneratorLike, device: torch.device | str) -> torch.Generator | None:
    """A generator that can draw on `device`.

    An int becomes a fresh generator on that device (so a seed alone is enough, and 0 is a seed like any
    other, unlike the reference which treated 0 as 'unseeded'). A generator on another device is an
    error rather than a silent host<->device round trip: random numbers are drawn where the tensor lives.
    """
    device = torch.device(device)
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        if generator.device.type != device.type:
            raise ValueError(
                f"generator is on {generator.device} but the tensor is on {device}; pass "
                f"torch.Generator(device={str(device)!r}).manual_seed(seed) or an int seed"
            )
        return generator
    if isinstance(generator, Integral) and not isinstance(generator, bool):
        return torch.Generator(device=device).manual_seed(int(generator))
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, not {type(generator).__name__}")


def zeros_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    return nn.init.zeros_(tensor)


def normal_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    return nn.init.normal_(tensor, 0.0, RANDOM_STD, generator=resolve_generator(generator, tensor.device))


def uniform_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    gen = resolve_generator(generator, tensor.device)
    return nn.init.uniform_(tensor, -_UNIFORM_BOUND, _UNIFORM_BOUND, generator=gen)


def kaiming_normal_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    gen = resolve_generator(generator, tensor.device)
    return nn.init.kaiming_normal_(tensor, mode="fan_in", nonlinearity="relu", generator=gen)


def kaiming_uniform_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    gen = resolve_generator(generator, tensor.device)
    return nn.init.kaiming_uniform_(tensor, mode="fan_in", nonlinearity="relu", generator=gen)


def xavier_normal_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    return nn.init.xavier_normal_(tensor, generator=resolve_generator(generator, tensor.device))


def xavier_uniform_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    return nn.init.xavier_uniform_(tensor, generator=resolve_generator(generator, tensor.device))


def orthogonal_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    return nn.init.orthogonal_(tensor, generator=resolve_generator(generator, tensor.device))


def default_(tensor: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    gen = resolve_generator(generator, tensor.device)
    return nn.init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=gen)


def default_bias_(bias: torch.Tensor, weight: torch.Tensor, generator: GeneratorLike = None) -> torch.Tensor:
    """torch's Linear/ConvNd default bias, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in from the weight."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return nn.init.uniform_(bias, -bound, bound, generator=resolve_generator(generator, bias.device))


INITIALIZERS: dict[str, Callable[..., torch.Tensor]] = {
    "zeros": zeros_,
    "normal": normal_,
    "uniform": uniform_,
    "kaiming_normal": kaiming_normal_,
    "kaiming_uniform": kaiming_uniform_,
    "xavier_normal": xavier_normal_,
    "xavier_uniform": xavier_uniform_,
    "orthogonal": orthogonal_,
    "default": default_,
}


def get_initializer(name: str) -> Callable[..., torch.Tensor]:
    """The initializer registered as `name`; unknown names fail listing the valid ones (a config typo)."""
    if isinstance(name, str) and name in INITIALIZERS:
        return INITIALIZERS[name]
    from seedbench.registry import get_initializer as registered  # plugins' initializers

    try:
        return registered(name)
    except Exception as exc:
        raise ValueError(str(exc)) from None
