"""VGG-19 (configuration E, no batch norm) with a 1-channel first conv, as in the Sup-Walsh study.

Initialisation follows the usual VGG recipe the reference's model came with (He-normal fan-out convs,
N(0, 0.01) linears, zero biases), except the first conv and the output layer: the reference swapped
those in after construction, so they keep PyTorch's defaults.
"""

from __future__ import annotations

import torch
from torch import nn

# Channels per conv; "M" is a 2x2 max-pool. Five pools: inputs need at least 32x32.
VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


class VGG(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, config: tuple = VGG19, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        self.reference_init_()

    def reference_init_(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)
        self.features[0].reset_parameters()
        self.classifier[-1].reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def build(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    return VGG(in_shape[0], num_classes)
