"""Datasets, data loading and transforms: ``Dataset``, ``TensorDataset``, ``DataLoader``,
``MNIST``, ``FashionMNIST``, ``Standardize``.

``DataLoader`` has a fast path for datasets that can hand over their samples as whole arrays
(``TensorDataset``, ``MNIST``, ...): each batch is one indexing operation per array instead of a
Python loop over samples. See ``nnx.data.loader``.
"""

from nnx.data.dataset import Dataset, Subset, TensorDataset, random_split
from nnx.data.idx import read_idx
from nnx.data.loader import DataLoader, default_collate
from nnx.data.mnist import MNIST, FashionMNIST
from nnx.data.transforms import Compose, Flatten, Standardize

__all__ = [
    "Compose",
    "DataLoader",
    "Dataset",
    "FashionMNIST",
    "Flatten",
    "MNIST",
    "Standardize",
    "Subset",
    "TensorDataset",
    "default_collate",
    "random_split",
    "read_idx",
]
