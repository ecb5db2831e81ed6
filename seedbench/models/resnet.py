"""Residual networks: ResNet-50 (ImageNet layout, 1-channel stem) and a CIFAR-style ResNet-18.

ResNet-50 is the Sup-Walsh study's network: a 7x7/s2 stem and a 3x3/s2 max-pool, bottleneck blocks with
the stride on the 3x3 conv ("v1.5"), He-normal fan-out convs; its stem and classifier keep PyTorch's
default init because the reference swapped them in after construction. ResNet-18 is for 28x28 and
32x32 inputs, where that stem would shrink the image 4x before the first block: a 3x3/s1 stem, no pool.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_ch)]


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(in_ch, out_ch, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convs; the ResNet-18/34 block."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(in_ch, width, 3, stride), nn.ReLU(inplace=True), *_conv_bn(width, width, 3))
        self.shortcut = _shortcut(in_ch, width, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand by 4; the ResNet-50 block."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        out_ch = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(in_ch, width, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(width, out_ch, 1),
        )
        self.shortcut = _shortcut(in_ch, out_ch, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks_per_stage: tuple[int, ...],
        in_channels: int,
        num_classes: int,
        imagenet_stem: bool,
    ):
        super().__init__()
        if imagenet_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(*_conv_bn(in_channels, 64, 3), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        channels = 64
        for index, count in enumerate(blocks_per_stage):
            width = 64 * 2**index
            blocks = []
            for position in range(count):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(block(channels, width, stride))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def build_resnet50(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    model = ResNet(Bottleneck, (3, 4, 6, 3), in_shape[0], num_classes, imagenet_stem=True)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    model.stem[0].reset_parameters()  # the reference's replaced stem: PyTorch default
    return model


def build_resnet18(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2), in_shape[0], num_classes, imagenet_stem=False)
