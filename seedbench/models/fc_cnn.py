"""The two networks of the random-bases study, with its exact parameter counts (docs/methods.md, "Networks").

They are initialised like the reference's Keras layers (Glorot-uniform kernels, zero biases) so an
'SGD baseline' here starts where the published one did.
"""

from __future__ import annotations

import torch
from torch import nn


def keras_default_init_(model: nn.Module) -> nn.Module:
    """Glorot-uniform kernels and zero biases for every Linear/Conv layer."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


class FC(nn.Sequential):
    """flatten -> Linear(in, 128) + ReLU -> Linear(128, classes)."""

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int = 10, hidden: int = 128):
        c, h, w = in_shape
        super().__init__(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        keras_default_init_(self)


class CNN(nn.Sequential):
    """Three valid-padded 3x3 convs with two max-pools, then a 64-unit dense layer."""

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int = 10):
        c, h, w = in_shape
        features = nn.Sequential(
            nn.Conv2d(c, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = features(torch.zeros(1, c, h, w)).shape[1]
        super().__init__(*features, nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, num_classes))
        keras_default_init_(self)
