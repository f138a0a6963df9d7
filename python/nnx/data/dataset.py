"""Datasets: the map-style ``Dataset`` interface and in-memory datasets over whole arrays.

A dataset may also offer the *whole-array protocol* that lets ``DataLoader`` skip per-sample
indexing: a method ``arrays()`` returning a tuple of numpy arrays that share their first
dimension, such that ``dataset[i]`` equals ``tuple(a[i] for a in dataset.arrays())`` (or
``None`` when the dataset cannot offer that, e.g. because of a per-sample random transform).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np


class Dataset(abc.ABC):
    """A map-style dataset: ``len(ds)`` samples, ``ds[i]`` for ``0 <= i < len(ds)``."""

    @abc.abstractmethod
    def __getitem__(self, index):
        ...

    @abc.abstractmethod
    def __len__(self) -> int:
        ...


def as_array(x, name: str) -> np.ndarray:
    """The numpy array behind ``x`` (an ndarray, an nnx Tensor or a nested sequence)."""
    if isinstance(x, np.ndarray):
        return x
    numpy = getattr(x, "numpy", None)
    if callable(numpy):
        return numpy()
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name}: expected an array or Tensor, got {type(x).__name__}") from exc


class TensorDataset(Dataset):
    """Samples ``(a[i], b[i], ...)`` drawn from arrays or Tensors sharing their first dimension.

    Like ``torch.utils.data.TensorDataset``, but ``ds[i]`` returns numpy arrays (or numpy scalars
    for 1-D inputs): the wrapped data is not copied, and ``DataLoader`` turns batches into
    Tensors. Supports the whole-array protocol, so loading batches costs one indexing operation
    per array and batch.
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: needs at least one array")
        arrays = tuple(as_array(a, f"TensorDataset: argument {i}") for i, a in enumerate(arrays))
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: argument {i} is a 0-d array; each array needs a "
                                 f"first dimension indexing the samples")
        if len({a.shape[0] for a in arrays}) > 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"TensorDataset: all arrays must have the same first dimension (the "
                             f"number of samples), got shapes {shapes}")
        self._arrays = arrays

    @property
    def tensors(self) -> tuple:
        """The wrapped data as nnx Tensors (zero-copy views)."""
        from nnx.tensor import Tensor

        return tuple(Tensor(np.ascontiguousarray(a)) for a in self._arrays)

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self._arrays

    def __getitem__(self, index):
        return tuple(a[index] for a in self._arrays)

    def __len__(self) -> int:
        return self._arrays[0].shape[0]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self._arrays)
        return f"TensorDataset({shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (whole-array protocol kept:
    the rows are taken again whenever ``dataset.arrays()`` returns other arrays, so a
    transform set or refitted on the source after the split is seen by both paths)."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [{-n}, {n}) for a dataset of {n} "
                             f"samples, got range [{self.indices.min()}, {self.indices.max()}]")
        # (the source's arrays, our rows of them): recomputed whenever the source hands out
        # other array objects, e.g. after its transform changed.
        self._cache = None

    def arrays(self):
        source = getattr(self.dataset, "arrays", None)
        whole = source() if callable(source) else None
        if whole is None:
            self._cache = None
            return None
        whole = tuple(whole)
        cached = self._cache
        # Holding the source arrays in the cache keeps identity a valid key (no reused ids).
        if cached is None or len(cached[0]) != len(whole) or any(
                a is not b for a, b in zip(cached[0], whole)):
            cached = self._cache = (whole, tuple(a[self.indices] for a in whole))
        return cached[1]

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset, lengths: Sequence[int], generator=None) -> list[Subset]:
    """Splits ``dataset`` into disjoint random ``Subset``s of the given lengths.

    ``lengths`` must sum to ``len(dataset)`` (fractions are not accepted, unlike recent torch).
    ``generator`` is a ``numpy.random.Generator``, an int seed, or None for nnx's global
    generator (reproducible under ``nnx.manual_seed``).
    """
    from nnx.data.loader import resolve_generator

    lengths = [int(n) for n in lengths]
    if any(n < 0 for n in lengths) or sum(lengths) != len(dataset):
        raise ValueError(f"random_split: lengths {lengths} must be >= 0 and sum to the dataset "
                         f"size {len(dataset)}")
    order = resolve_generator(generator).permutation(len(dataset))
    bounds = np.cumsum([0] + lengths)
    return [Subset(dataset, order[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
