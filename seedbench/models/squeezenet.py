"""SqueezeNet 1.0 with the Sup-Walsh study's 1-channel 7x7/s2 stem (no padding, as in the original).

Max-pools round up (ceil mode) like the original Caffe model. The classifier is a 1x1 conv to the
classes followed by ReLU and global average pooling, so logits are non-negative: that is SqueezeNet's
design and the reference's. Fire convs are He-uniform with zero bias; the stem and the class conv keep
PyTorch's default init, as the reference swapped both in after construction.
"""

from __future__ import annotations

import torch
from torch import nn


class Fire(nn.Module):
    """Squeeze to few channels with 1x1, then expand with parallel 1x1 and 3x3 convs."""

    def __init__(self, in_ch: int, squeeze: int, expand1: int, expand3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_ch, squeeze, 1), nn.ReLU(inplace=True))
        self.expand1 = nn.Sequential(nn.Conv2d(squeeze, expand1, 1), nn.ReLU(inplace=True))
        self.expand3 = nn.Sequential(nn.Conv2d(squeeze, expand3, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand1(x), self.expand3(x)], 1)


class SqueezeNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 7, stride=2),
            nn.ReLU(inplace=True),
            pool(),
            Fire(96, 16, 64, 64),
            Fire(128, 16, 64, 64),
            Fire(128, 32, 128, 128),
            pool(),
            Fire(256, 32, 128, 128),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            pool(),
            Fire(512, 64, 256, 256),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Conv2d(512, num_classes, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        for module in self.features.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        self.features[0].reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    return SqueezeNet(in_shape[0], num_classes)
