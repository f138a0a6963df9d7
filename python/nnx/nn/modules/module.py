"""``Module``: the base class of layers and models, as ``torch.nn.Module``.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so ``parameters()``,
``state_dict()``, ``train()``/``eval()`` and ``repr`` see the whole tree without any
bookkeeping in subclasses. Buffers (non-learnable state saved in the state dict) are registered
with ``register_buffer``.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from nnx.nn import utils as nn_utils
from nnx.nn.parameter import Parameter
from nnx.tensor import Tensor

__all__ = ["Module"]


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def _as_array(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else value


class Module:
    """Base class for all layers and models: subclass it, assign layers and Parameters in
    ``__init__`` (after ``super().__init__()``) and implement ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- registration -------------------------------------------------------------------------

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before {type(self).__name__}.__init__ "
                                 "called Module.__init__() (call super().__init__() first)")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} of "
                                f"{type(self).__name__} (a Parameter or None is required)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as submodule {name!r} of "
                                f"{type(self).__name__} (a Module or None is required)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, (Tensor, np.ndarray)):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} of "
                                f"{type(self).__name__} (a Tensor, array or None is required)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        self.__dict__.pop(name, None)
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails, i.e. for registered entries.
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Registers non-learnable state (a Tensor, numpy array or None), e.g. running
        statistics. Persistent buffers are part of ``state_dict()``."""
        _check_name(self, name)
        if tensor is not None and not isinstance(tensor, (Tensor, np.ndarray)):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor, array or None, got "
                            f"{type(tensor).__name__}")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        _check_name(self, name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got "
                            f"{type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # -- traversal ----------------------------------------------------------------------------

    def named_modules(self, memo: set | None = None, prefix: str = ""):
        """Yields (qualified name, module) for this module and every descendant, once each."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, table: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """Yields (qualified name, Parameter); a parameter shared by two modules comes once."""
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    # -- state --------------------------------------------------------------------------------

    def state_dict(self) -> OrderedDict:
        """Ordered ``{qualified name: numpy array}`` of every parameter and persistent buffer,
        as copies (so a later update of the model does not change a saved state). Unlike PyTorch
        the values are numpy arrays, ready for ``nnx.save``."""
        out = OrderedDict()
        for prefix, module in self.named_modules():
            dot = prefix + "." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[dot + name] = np.array(p.data, copy=True)
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    out[dot + name] = np.array(_as_array(b), copy=True)
        return out

    def _state_entries(self) -> OrderedDict:
        # name -> (owning module, table, attribute name), for every entry state_dict() writes.
        out = OrderedDict()
        for prefix, module in self.named_modules():
            dot = prefix + "." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[dot + name] = (module, "_parameters", name)
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    out[dot + name] = (module, "_buffers", name)
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copies arrays (or Tensors) from ``state_dict`` into the parameters and buffers, in
        place, converting to each one's dtype.

        A shape mismatch always raises; with ``strict`` (the default) missing or unexpected keys
        raise too, all listed in one ``RuntimeError``, and nothing is modified. Returns
        ``(missing_keys, unexpected_keys)`` as PyTorch does.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a dict, got {type(state_dict).__name__}")
        entries = self._state_entries()
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        errors = []
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)) + ".")
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: "
                          + ", ".join(map(repr, unexpected)) + ".")
        values = {}
        for key, (module, table, name) in entries.items():
            if key not in state_dict:
                continue
            owner = getattr(module, table)[name]
            target = _as_array(owner)
            value = np.asarray(_as_array(state_dict[key]))
            if value.shape != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{value.shape} from checkpoint, the shape in current model is "
                              f"{target.shape}.")
            elif value.dtype.kind not in "biuf" or (value.dtype.kind == "f") != (
                    target.dtype.kind == "f"):
                errors.append(f"dtype mismatch for {key}: cannot copy {value.dtype} from "
                              f"checkpoint into {target.dtype}.")
            else:
                values[key] = (owner, target, value)
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for owner, target, value in values.values():
            np.copyto(target, value, casting="unsafe")
            cell = getattr(owner, "_version_cell", None)
            if cell is not None:  # an in-place change: a graph that saved it must not backpropagate
                cell[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    # -- modes and gradients ------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Sets training mode (``mode=True``) or evaluation mode on this module and all
        descendants; affects e.g. Dropout. Returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drops every parameter's gradient, or zeroes it with ``set_to_none=False``."""
        nn_utils.zero_grad(self.parameters(), set_to_none)

    def apply(self, fn) -> Module:
        """Calls ``fn(module)`` on every descendant, then on self (e.g. custom initialisation).
        Returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def to(self, dtype) -> Module:
        """Converts floating-point parameters and buffers to ``dtype`` in place (the Parameter
        objects stay the same, so an optimizer built before still holds them). Only dtypes: nnx
        has one device."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"to: expected a floating-point dtype, got {dtype}")
        for module in self.modules():
            for p in module._parameters.values():
                if p is not None and p.data.dtype != dtype:
                    p.data = p.data.astype(dtype)
                    p.grad = None
            for name, b in module._buffers.items():
                if isinstance(b, Tensor) and b.data.dtype.kind == "f":
                    b.data = b.data.astype(dtype)
                elif isinstance(b, np.ndarray) and b.dtype.kind == "f":
                    module._buffers[name] = b.astype(dtype)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (an nnx addition)."""
        return sum(p.data.size for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    # -- repr ---------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The arguments shown inside the parentheses of ``repr``; override in subclasses."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        name = type(self).__name__
        if not lines:
            return f"{name}()"
        if len(lines) == 1 and not self._modules:
            return f"{name}({lines[0]})"
        return f"{name}(\n  " + "\n  ".join(lines) + "\n)"


def _check_name(module: Module, name: str) -> None:
    if "_parameters" not in module.__dict__:
        raise AttributeError("cannot register before Module.__init__() is called")
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"invalid name {name!r}: a non-empty string without '.' is required")
    if name in module.__dict__ and name not in module._parameters:
        raise KeyError(f"attribute {name!r} already exists on {type(module).__name__}")
