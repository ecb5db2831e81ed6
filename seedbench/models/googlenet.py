"""GoogLeNet (Inception v1) with a 1-channel stem and no auxiliary classifiers.

Two deliberate departures from the 2014 paper, both to match the network the Sup-Walsh reference ran
(and so its ~5.6M parameters): every conv is followed by batch norm (eps 1e-3), and the branch the
paper gives a 5x5 conv uses a 3x3 one. The auxiliary heads are left out: the reference never put them
in the loss, so they would only add unused parameters. Convs and the classifier start from a
N(0, 0.01) truncated at +-2; the stem conv and classifier keep PyTorch's default init because the
reference swapped them in after construction.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(out_ch, eps=0.001),
            nn.ReLU(inplace=True),
        )


class Inception(nn.Module):
    """Four parallel branches concatenated: 1x1 | 1x1->3x3 | 1x1->3x3 | 3x3 max-pool->1x1."""

    def __init__(self, in_ch: int, ch1: int, red3: int, ch3: int, red5: int, ch5: int, pool_proj: int):
        super().__init__()
        self.branch1 = ConvBN(in_ch, ch1, 1)
        self.branch2 = nn.Sequential(ConvBN(in_ch, red3, 1), ConvBN(red3, ch3, 3, padding=1))
        self.branch3 = nn.Sequential(ConvBN(in_ch, red5, 1), ConvBN(red5, ch5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBN(in_ch, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.2):
        super().__init__()
        pool = lambda kernel=3: nn.MaxPool2d(kernel, stride=2, ceil_mode=True)  # noqa: E731
        self.stem = nn.Sequential(
            ConvBN(in_channels, 64, 7, stride=2, padding=3),
            pool(),
            ConvBN(64, 64, 1),
            ConvBN(64, 192, 3, padding=1),
            pool(),
        )
        self.inceptions = nn.Sequential(
            Inception(192, 64, 96, 128, 16, 32, 32),
            Inception(256, 128, 128, 192, 32, 96, 64),
            pool(),
            Inception(480, 192, 96, 208, 16, 48, 64),
            Inception(512, 160, 112, 224, 24, 64, 64),
            Inception(512, 128, 128, 256, 24, 64, 64),
            Inception(512, 112, 144, 288, 32, 64, 64),
            Inception(528, 256, 160, 320, 32, 128, 128),
            pool(2),
            Inception(832, 256, 160, 320, 32, 128, 128),
            Inception(832, 384, 192, 384, 48, 128, 128),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.fc = nn.Linear(1024, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
        self.stem[0][0].reset_parameters()
        self.fc.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.inceptions(self.stem(x))))


def build(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    return GoogLeNet(in_shape[0], num_classes)
