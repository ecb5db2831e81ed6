"""Whole-dataset image transforms applied once at load time (e.g. Sup-Walsh's 1x64x64 protocol)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from seedbench.data.datasets import Dataset

# ITU-R 601 luma weights, as common image libraries use for RGB -> grayscale
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def _convert(x: torch.Tensor, size: int | None, grayscale: bool) -> torch.Tensor:
    if grayscale and x.shape[1] == 3:
        x = (x * _LUMA.to(x.device, x.dtype)).sum(1, keepdim=True)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        out = []
        for start in range(0, len(x), 4096):  # bounded peak memory on 50,000-image datasets
            out.append(F.interpolate(x[start : start + 4096], size=(size, size), mode="bilinear", align_corners=False))
        x = torch.cat(out) if out else x.new_zeros(0, x.shape[1], size, size)
    return x


def resize_dataset(data: Dataset, size: int | None = None, grayscale: bool = False) -> Dataset:
    if size is None and not grayscale:
        return data
    return Dataset(
        name=data.name,
        x_train=_convert(data.x_train, size, grayscale),
        y_train=data.y_train,
        x_val=_convert(data.x_val, size, grayscale),
        y_val=data.y_val,
        x_test=_convert(data.x_test, size, grayscale),
        y_test=data.y_test,
        num_classes=data.num_classes,
        source=data.source,
    )
