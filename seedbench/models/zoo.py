"""The Sup-Walsh model zoo: name -> `build(in_shape, num_classes) -> nn.Module`.

Every builder here checks the input size before returning. Several of these networks (AlexNet, VGG-19,
MiT) cannot take 28x28 images, and without the check that would surface as a shape error deep inside
the first forward pass, after the data had loaded. The check runs the model once on the meta device
(shapes only, no memory, no arithmetic) and turns a failure into a ConfigError that names the smallest
square input that works.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from seedbench.errors import ConfigError
from seedbench.models import alexnet, base_mlp, convmixer, googlenet, mit, resnet, squeezenet, vgg

Builder = Callable[..., nn.Module]

_FAMILIES: dict[str, Builder] = {
    "base": base_mlp.build,
    "alexnet": alexnet.build,
    "resnet50": resnet.build_resnet50,
    "vgg19": vgg.build,
    "googlenet": googlenet.build,
    "squeezenet": squeezenet.build,
    "nvidia": mit.build,
    "convmixer": convmixer.build,
    "resnet18": resnet.build_resnet18,
}

# Largest side probed when searching for the smallest input that works.
_PROBE_LIMIT = 512


def _runs_on(model: nn.Module, in_shape: tuple[int, int, int]) -> bool:
    try:
        model(torch.empty(2, *in_shape, device="meta"))
    except (RuntimeError, ValueError):
        return False
    return True


def _meta_model(builder: Builder, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    with torch.device("meta"):
        model = builder(in_shape, num_classes)
    return model.eval()  # eval: batch norm accepts a 1x1 feature map


def minimum_side(name: str, channels: int = 1, num_classes: int = 10) -> int | None:
    """Smallest S such that the model takes channels x S x S inputs (None: none up to 512).

    Models that flatten the raw input (base) are built for one size and take any size they are built for.
    """
    builder = _FAMILIES[name]
    for side in range(1, _PROBE_LIMIT + 1):
        shape = (channels, side, side)
        if _runs_on(_meta_model(builder, shape, num_classes), shape):
            return side
    return None


def _checked(name: str, builder: Builder) -> Builder:
    @functools.wraps(builder)
    def build(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
        in_shape = tuple(int(v) for v in in_shape)
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ConfigError(f"model {name!r} needs an input shape (C, H, W) of positive sizes; got {in_shape}")
        if not _runs_on(_meta_model(builder, in_shape, num_classes), in_shape):
            side = minimum_side(name, in_shape[0], num_classes)
            need = f"at least {side}x{side}" if side else "a larger image"
            raise ConfigError(
                f"model {name!r} cannot take {in_shape[0]}x{in_shape[1]}x{in_shape[2]} inputs: it needs {need}; "
                "resize the data (the Sup-Walsh presets use 1x64x64)"
            )
        return builder(in_shape, num_classes)

    return build


ZOO: dict[str, Builder] = {name: _checked(name, builder) for name, builder in _FAMILIES.items()}


def parameter_table(shapes: tuple[tuple[int, int, int], ...] = ((1, 64, 64), (1, 28, 28), (3, 32, 32))) -> str:
    """Markdown table of trainable parameters per model and input shape (10 classes), built on meta."""
    header = ["model", *("x".join(map(str, s)) for s in shapes), "smallest 1-channel input"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, builder in _FAMILIES.items():
        cells = [name]
        for shape in shapes:
            model = _meta_model(builder, shape, 10)
            fits = _runs_on(model, shape)
            cells.append(f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,}" if fits else "too small")
        side = minimum_side(name)
        cells.append("any (built for its size)" if name == "base" else f"{side}x{side}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


__all__ = ["ZOO", "minimum_side", "parameter_table"]

if __name__ == "__main__":
    print(parameter_table())
