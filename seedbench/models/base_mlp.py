"""'Base': the Sup-Walsh study's own multilayer perceptron (docs/methods.md, "Sup-Walsh").

4096-640-320-50-10 on 1x64x64 inputs gives the study's 2,843,760 parameters. Like the reference network,
dropout (p=0.5) sits only in front of the output layer and the layers keep PyTorch's default init,
so the 'default' initializer arm starts where the reference's did.
"""

from __future__ import annotations

from torch import nn

HIDDEN = (640, 320, 50)


class BaseMLP(nn.Sequential):
    """flatten -> 640 -> 320 -> 50 (ReLU each) -> dropout 0.5 -> classes."""

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int = 10, dropout: float = 0.5):
        c, h, w = in_shape
        layers: list[nn.Module] = [nn.Flatten()]
        width = c * h * w
        for hidden in HIDDEN:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers += [nn.Dropout(dropout), nn.Linear(width, num_classes)]
        super().__init__(*layers)


def build(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    return BaseMLP(in_shape, num_classes)
