"""Tensor factories: zeros, ones, full, arange, eye and the random ones.

Shapes are given as PyTorch does, ``zeros(2, 3)`` or ``zeros((2, 3))``. Floating results are
float32 unless ``dtype`` says otherwise; random draws come from ``nnx.random.default_generator()``
(or the ``generator`` passed), so ``nnx.manual_seed`` makes them repeat.
"""

from __future__ import annotations

import numpy as np

from nnx import _memory
from nnx.random import default_generator
from nnx.tensor import Tensor

__all__ = ["arange", "empty", "eye", "full", "full_like", "ones", "ones_like", "rand", "randint",
           "randn", "randperm", "zeros", "zeros_like"]


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in size {shape}")
    return shape


def _shape_of(t, who: str) -> tuple:
    if not isinstance(t, (Tensor, np.ndarray)):
        raise TypeError(f"{who}: expected a Tensor, got {type(t).__name__}")
    return t.shape


def _generator(generator, who: str) -> np.random.Generator:
    if generator is None:
        return default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"{who}: generator must be a numpy.random.Generator, got "
                        f"{type(generator).__name__}")
    return generator


def _new(array: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(array)
    if requires_grad:
        t.requires_grad = True
    return t


def zeros(*size, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(_memory.zeros(_size(size), dtype), requires_grad)


def ones(*size, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(_size(size), dtype), requires_grad)


def empty(*size, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(_memory.empty(_size(size), dtype), requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = np.int64 if isinstance(fill_value, int) and not isinstance(
            fill_value, bool) else np.bool_ if isinstance(fill_value, bool) else np.float32
    return _new(np.full(_size((size,)), fill_value, dtype), requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(_shape_of(t, "zeros_like"), dtype or t.dtype), requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(_shape_of(t, "ones_like"), dtype or t.dtype), requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return _new(np.full(_shape_of(t, "full_like"), fill_value, dtype or t.dtype), requires_grad)


def eye(n: int, m: int | None = None, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(np.eye(n, m, dtype=dtype), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Like ``torch.arange``: int64 when start, end and step are all ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    return _new(np.arange(start, end, step).astype(dtype, copy=False), requires_grad)


def randn(*size, dtype=np.float32, generator=None, requires_grad: bool = False) -> Tensor:
    """Standard normal draws."""
    g = _generator(generator, "randn")
    return _new(g.standard_normal(_size(size), dtype=np.dtype(dtype).type), requires_grad)


def rand(*size, dtype=np.float32, generator=None, requires_grad: bool = False) -> Tensor:
    """Uniform draws in [0, 1)."""
    g = _generator(generator, "rand")
    return _new(g.random(_size(size), dtype=np.dtype(dtype).type), requires_grad)


def randint(low: int, high: int | None = None, size=(), dtype=np.int64,
            generator=None) -> Tensor:
    """Integers in [low, high) (or [0, low) when ``high`` is omitted)."""
    if high is None:
        low, high = 0, low
    g = _generator(generator, "randint")
    return Tensor._wrap(g.integers(low, high, _size((size,)), dtype=dtype))


def randperm(n: int, generator=None) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    g = _generator(generator, "randperm")
    return Tensor._wrap(g.permutation(n).astype(np.int64, copy=False))
