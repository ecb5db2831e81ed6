"""'Nvidia': a SegFormer MiT-b0-style hierarchical transformer encoder with a linear classifier.

The reference used Hugging Face's image-classification head on the mit-b0 encoder (hence "Nvidia").
Four stages, each an overlapping strided conv patch embedding, two transformer blocks and a layer norm.
Attention is "efficient": keys and values come from a copy of the tokens shrunk by a strided conv
(spatial reduction 8/4/2/1), which is what makes a transformer affordable at stride 4. The feed-forward
is Mix-FFN: a 3x3 depthwise conv between the two linears supplies the position information that the
encoder has no embedding for. Logits come from the mean token of the last stage.

Randomly initialised as the study specifies, with Hugging Face's SegFormer scheme (convs and linears
N(0, 0.02), zero biases, unit layer norms); the classifier keeps PyTorch's default, as in the
reference, which swapped it in. Stage 1 is 1/4 of the input and its reduction conv is 8x8, so inputs
need at least 29x29.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MiTConfig:
    hidden: tuple[int, ...] = (32, 64, 160, 256)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    heads: tuple[int, ...] = (1, 2, 5, 8)
    reductions: tuple[int, ...] = (8, 4, 2, 1)
    patch_sizes: tuple[int, ...] = (7, 3, 3, 3)
    strides: tuple[int, ...] = (4, 2, 2, 2)
    mlp_ratio: int = 4
    drop_path: float = 0.1
    init_std: float = 0.02


MIT_B0 = MiTConfig()


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class PatchEmbed(nn.Module):
    """Overlapping patches: a conv with kernel > stride, then layer norm over channels."""

    def __init__(self, in_ch: int, dim: int, patch: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch, stride=stride, padding=patch // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientAttention(nn.Module):
    def __init__(self, dim: int, heads: int, reduction: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.reduction = reduction
        if reduction > 1:
            self.reduce = nn.Conv2d(dim, dim, reduction, stride=reduction)
            self.reduce_norm = nn.LayerNorm(dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, d = x.shape
        context = x
        if self.reduction > 1:
            grid = x.transpose(1, 2).reshape(b, d, h, w)
            context = self.reduce_norm(self.reduce(grid).flatten(2).transpose(1, 2))
        attended = F.scaled_dot_product_attention(self._split(self.query(x)), self._split(self.key(context)), self._split(self.value(context)))
        return self.out(attended.transpose(1, 2).reshape(b, n, d))


class MixFFN(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        hidden = dim * ratio
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, reduction: int, ratio: int, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientAttention(dim, heads, reduction)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, ratio)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.ffn(self.norm2(x), h, w))


class Stage(nn.Module):
    def __init__(self, in_ch: int, dim: int, config: MiTConfig, index: int, drop_paths: list[float]):
        super().__init__()
        self.embed = PatchEmbed(in_ch, dim, config.patch_sizes[index], config.strides[index])
        self.blocks = nn.ModuleList(Block(dim, config.heads[index], config.reductions[index], config.mlp_ratio, p) for p in drop_paths)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, h, w = self.embed(x)
        for block in self.blocks:
            x = block(x, h, w)
        x = self.norm(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)


class MiTClassifier(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, config: MiTConfig = MIT_B0):
        super().__init__()
        total = sum(config.depths)
        rates = [config.drop_path * i / max(total - 1, 1) for i in range(total)]  # linear, like torch.linspace
        stages, channels, start = [], in_channels, 0
        for index, (dim, depth) in enumerate(zip(config.hidden, config.depths)):
            stages.append(Stage(channels, dim, config, index, rates[start : start + depth]))
            channels, start = dim, start + depth
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(channels, num_classes)
        for module in self.stages.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.normal_(module.weight, 0.0, config.init_std)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.stages(x).flatten(2).mean(2))


def build(in_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    return MiTClassifier(in_shape[0], num_classes)
