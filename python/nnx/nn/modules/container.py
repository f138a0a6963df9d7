"""Containers: ``Sequential`` and ``ModuleList``."""

from __future__ import annotations

import operator
from collections import OrderedDict

from nnx.nn.modules.module import Module

__all__ = ["ModuleList", "Sequential"]


def _index(container: Module, idx) -> int:
    n = len(container)
    try:
        i = operator.index(idx)
    except TypeError:
        raise TypeError(f"{type(container).__name__} indices must be integers or slices, not "
                        f"{type(idx).__name__}") from None
    if not -n <= i < n:
        raise IndexError(f"index {idx} is out of range for {type(container).__name__} of "
                         f"length {n}")
    return i + n if i < 0 else i


def _check_module(owner: str, module) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"{owner}: expected a Module, got {type(module).__name__}")
    return module


class _IndexedModules(Module):
    """Children named "0", "1", ... kept in order; shared by Sequential and ModuleList."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def _values(self) -> list[Module]:
        return list(self._modules.values())

    def _renumber(self, modules: list[Module]) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def __setitem__(self, idx, module) -> None:
        key = list(self._modules)[_index(self, idx)]
        self._modules[key] = _check_module(type(self).__name__, module)

    def __delitem__(self, idx) -> None:
        modules = self._values()
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[_index(self, idx)]
        self._renumber(modules)

    def append(self, module: Module):
        """Adds ``module`` at the end; returns self."""
        self.add_module(str(len(self)), _check_module(type(self).__name__, module))
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = self._values()
        modules.insert(index, _check_module(type(self).__name__, module))
        self._renumber(modules)


class Sequential(_IndexedModules):
    """Applies its modules in order: ``Sequential(Linear(784, 256), ReLU(), Linear(256, 10))``.
    Also accepts one ``OrderedDict`` of named modules. Supports indexing (an int gives the
    module, a slice a new Sequential sharing the modules), ``len``, iteration and ``append``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, _check_module("Sequential", m))
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _check_module("Sequential", m))

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return self._values()[_index(self, idx)]

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(_IndexedModules):
    """A list of modules whose parameters the parent registers; it has no ``forward``."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(self._values()[idx])
        return self._values()[_index(self, idx)]

    def __iadd__(self, modules):
        return self.extend(modules)
