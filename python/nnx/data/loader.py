"""``DataLoader``: batches of Tensors from a dataset, optionally shuffled, reproducibly.

Fast path: when ``collate_fn`` is the default and the dataset offers the whole-array protocol
(``dataset.arrays()``, see ``nnx.data.dataset``; ``TensorDataset``, ``Subset`` of one, ``MNIST``
and ``FashionMNIST`` do), the loader converts those arrays to the loader dtypes (a no-op when
they already are float32/int64) and builds each batch with a single fancy-indexing
operation per array: no per-sample ``__getitem__``, no Python-level stacking. The batches are
identical to the ones the per-sample path would produce. The conversion is cached for as long
as ``arrays()`` returns the same array objects, so in-place edits of converted (non-float32,
non-int64) source data after the first epoch are not seen; float32/int64 data is used as is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

_STRING_TYPES = (str, bytes)


def _loader_dtype(dtype: np.dtype, what: str) -> np.dtype:
    """float32 for real floating data, int64 for integers, bool kept; anything else rejected.

    float64 becomes float32 because nnx trains in float32; pass a ``collate_fn`` to keep it.
    """
    if dtype.kind == "f":
        return np.dtype(np.float32)
    if dtype.kind in "iu":
        return np.dtype(np.int64)
    if dtype.kind == "b":
        return dtype
    raise TypeError(f"default_collate: cannot batch {what} of dtype {dtype}; pass a collate_fn")


def _as_loader_array(a: np.ndarray, what: str) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=_loader_dtype(a.dtype, what))


def _tensor(a: np.ndarray):
    from nnx.tensor import Tensor

    return Tensor(a)


def default_collate(batch: list):
    """Stacks a list of samples into Tensors with a leading batch dimension.

    numpy arrays, nnx Tensors and numbers become one Tensor each: floating data as float32,
    integers as int64 (so class labels are ready for the losses), booleans as bool. Tuples,
    lists and named tuples are collated field by field (returned as a tuple, or the named tuple
    type), dicts key by key; strings are returned as a list.
    """
    from nnx.tensor import Tensor

    if not batch:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, (np.ndarray, np.generic, Tensor, bool, int, float)):
        arrays = [x.numpy() if isinstance(x, Tensor) else np.asarray(x) for x in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"default_collate: cannot stack samples of different shapes "
                             f"{sorted(shapes)}; pass a collate_fn that pads or crops them")
        stacked = np.stack(arrays)
        return _tensor(_as_loader_array(stacked, type(elem).__name__))
    if isinstance(elem, _STRING_TYPES):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, (tuple, list)):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise ValueError("default_collate: samples in a batch have different numbers of "
                             "fields")
        fields = [default_collate(list(column)) for column in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):
            return type(elem)(*fields)
        return tuple(fields)
    raise TypeError(f"default_collate: cannot batch samples of type {type(elem).__name__}; "
                    f"pass a collate_fn")


def resolve_generator(generator) -> np.random.Generator:
    """A numpy Generator from ``generator`` (Generator, int seed or None = nnx's global one)."""
    if generator is None:
        from nnx.random import default_generator

        return default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be a numpy.random.Generator, an int seed or None, got "
                    f"{type(generator).__name__}")


class DataLoader:
    """Iterates over ``dataset`` in batches of ``batch_size`` samples.

    Each epoch (each ``iter(loader)``) visits every sample exactly once; with ``drop_last`` the
    final batch is dropped when it is smaller than ``batch_size``. ``shuffle`` draws a fresh
    permutation per epoch from ``generator``: a ``numpy.random.Generator``, an int seed (a
    private Generator seeded once, so epochs differ but runs repeat), or None for nnx's global
    generator, making runs reproducible under ``nnx.manual_seed``. ``collate_fn`` turns a list of
    samples into a batch (default: ``default_collate``).

    Differences from torch: no worker processes (the whole-array fast path described in this
    module's docstring makes them unnecessary for in-memory data), no samplers, and tuple samples
    give tuple batches (torch gives lists).
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn=None, generator=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: batch_size must be an int, got "
                            f"{type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        # An int seed gives one private Generator for the loader's lifetime, so that successive
        # epochs get different orders; None is resolved per epoch, following nnx.manual_seed.
        self.generator = generator if generator is None else resolve_generator(generator)
        self._converted = None

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _whole_arrays(self):
        if self.collate_fn is not None:
            return None
        source = getattr(self.dataset, "arrays", None)
        arrays = source() if callable(source) else None
        if arrays is None:
            return None
        arrays = tuple(arrays)
        # Converting e.g. float64 data to float32 copies the whole array: do it once per source,
        # not once per epoch (the cache holds the source arrays, so their ids stay unique).
        cached = self._converted
        if cached is not None and len(cached[0]) == len(arrays) and all(
                a is b for a, b in zip(cached[0], arrays)):
            return cached[1]
        converted = tuple(_as_loader_array(np.asarray(a), "dataset array") for a in arrays)
        self._converted = (arrays, converted)
        return converted

    def __iter__(self):
        n = len(self.dataset)
        order = resolve_generator(self.generator).permutation(n) if self.shuffle else None
        stop = len(self) * self.batch_size if self.drop_last else n
        arrays = self._whole_arrays()
        if arrays is not None:
            return self._iter_fast(arrays, order, stop)
        return self._iter_samples(order, stop)

    def _iter_fast(self, arrays, order, stop):
        for lo in range(0, stop, self.batch_size):
            hi = min(lo + self.batch_size, stop)
            if order is None:
                # A copy, not a view: the training loop may modify a batch in place.
                yield tuple(_tensor(a[lo:hi].copy()) for a in arrays)
            else:
                index = order[lo:hi]
                yield tuple(_tensor(a[index]) for a in arrays)

    def _iter_samples(self, order, stop):
        collate = self.collate_fn or default_collate
        for lo in range(0, stop, self.batch_size):
            hi = min(lo + self.batch_size, stop)
            indices = range(lo, hi) if order is None else order[lo:hi].tolist()
            yield collate([self.dataset[i] for i in indices])

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")
