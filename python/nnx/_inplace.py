"""In-place Tensor methods (``add_``, ``zero_``, ``t[i] = v``, ``+=``, ...).

They change ``t.data`` directly and are never recorded by autograd, so they refuse to run on (or
with) a tensor that requires grad while grad mode is on: parameter updates and initialisation
happen inside ``nnx.no_grad()``, as in PyTorch. Each one increments the tensor's version counter
(see ``nnx.tensor``), after the change, so that backward notices a saved array that changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnx import autograd
from nnx.random import default_generator

if TYPE_CHECKING:
    from nnx.tensor import Tensor


def _guard_inplace(t, what: str, other=None) -> None:
    recorded = t._requires_grad or getattr(other, "_requires_grad", False)
    if recorded and autograd.is_grad_enabled():
        raise RuntimeError(f"{what}: an in-place change involving a tensor that requires grad "
                           "is not recorded by autograd; do it inside nnx.no_grad() or out of "
                           "place")


def _array(x):
    return x.data if hasattr(x, "_requires_grad") else x  # a Tensor's array, else x itself


def _key(index):
    return tuple(_array(i) for i in index) if isinstance(index, tuple) else _array(index)


class InPlaceMixin:
    """Mixed into ``nnx.Tensor``."""

    __slots__ = ()

    def zero_(self) -> Tensor:
        _guard_inplace(self, "zero_")
        self._data.fill(0)
        self._version_cell[0] += 1
        return self

    def fill_(self, value) -> Tensor:
        _guard_inplace(self, "fill_")
        self._data.fill(value)
        self._version_cell[0] += 1
        return self

    def copy_(self, src) -> Tensor:
        _guard_inplace(self, "copy_", src)
        np.copyto(self._data, np.asarray(_array(src)))
        self._version_cell[0] += 1
        return self

    def add_(self, other, alpha=1) -> Tensor:
        _guard_inplace(self, "add_", other)
        other = _array(other)
        self._data += other if alpha == 1 else alpha * other
        self._version_cell[0] += 1
        return self

    def sub_(self, other, alpha=1) -> Tensor:
        return self.add_(other, -alpha)

    def mul_(self, other) -> Tensor:
        _guard_inplace(self, "mul_", other)
        self._data *= _array(other)
        self._version_cell[0] += 1
        return self

    def div_(self, other) -> Tensor:
        _guard_inplace(self, "div_", other)
        self._data /= _array(other)
        self._version_cell[0] += 1
        return self

    def normal_(self, mean=0.0, std=1.0) -> Tensor:
        """Fill with N(mean, std^2) draws from nnx's generator."""
        _guard_inplace(self, "normal_")
        self._data[...] = default_generator().normal(mean, std, self.shape)
        self._version_cell[0] += 1
        return self

    def uniform_(self, a=0.0, b=1.0) -> Tensor:
        """Fill with U(a, b) draws from nnx's generator."""
        _guard_inplace(self, "uniform_")
        self._data[...] = default_generator().uniform(a, b, self.shape)
        self._version_cell[0] += 1
        return self

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def __setitem__(self, index, value) -> None:
        _guard_inplace(self, "__setitem__", value)
        self._data[_key(index)] = _array(value)
        self._version_cell[0] += 1
