"""Datasets as in-memory tensors: digits (bundled), mnist and fmnist (IDX), cifar10 (pickle batches)."""

from seedbench.data.datasets import DATASETS, Dataset, availability, load_dataset, locate

__all__ = ["DATASETS", "Dataset", "availability", "load_dataset", "locate"]
