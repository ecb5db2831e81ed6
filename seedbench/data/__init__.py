"""Datasets: a registry of specs (numpy only) and in-memory tensors for training.

`seedbench.data.registry` (register_dataset, get_dataset_spec, dataset_names, check_dataset) never
imports torch, so the driver can plan and check a sweep without it; `Dataset`, `load_dataset`,
`availability` and `locate` live in seedbench.data.datasets (torch) and are imported on first use.
"""

from __future__ import annotations

from typing import Any

from seedbench.data.registry import (
    DatasetInfo,
    DatasetSpec,
    RawSplits,
    check_dataset,
    dataset_names,
    get_dataset_spec,
    register_dataset,
)

_LAZY = {"Dataset", "availability", "load_dataset", "locate", "present_datasets"}

__all__ = [
    "Dataset",
    "DatasetInfo",
    "DatasetSpec",
    "RawSplits",
    "availability",
    "check_dataset",
    "dataset_names",
    "get_dataset_spec",
    "load_dataset",
    "locate",
    "present_datasets",
    "register_dataset",
]


def __getattr__(name: str) -> Any:
    """The torch-backed names, imported only when asked for (importing the package stays torch-free)."""
    if name in _LAZY:
        from seedbench.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'seedbench.data' has no attribute {name!r}")
