"""Optimizer base class: parameter groups, per-parameter state, zero_grad and state dicts.

The update rules themselves live in ``nnx._kernels`` (``sgd_step``, ``adam_step``): each
``step()`` makes one kernel call per parameter, so a fused C++ kernel replaces the numpy body
without touching the optimizers.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterable, MutableMapping

import numpy as np

from nnx import _memory
from nnx.nn.utils import zero_grad

__all__ = ["Optimizer"]


class _ParamState(MutableMapping):
    """``optimizer.state[param]`` keyed by the parameter's identity (tensors may not be hashable,
    and two equal tensors are still two parameters)."""

    def __init__(self):
        self._items: dict[int, tuple[object, dict]] = {}

    def __getitem__(self, param):
        entry = self._items.get(id(param))
        if entry is None:
            raise KeyError("no state for this parameter")
        return entry[1]

    def __setitem__(self, param, value):
        self._items[id(param)] = (param, value)

    def __delitem__(self, param):
        del self._items[id(param)]

    def __iter__(self):
        return (p for p, _ in self._items.values())

    def __len__(self):
        return len(self._items)

    def setdefault(self, param, default=None):
        if id(param) not in self._items:
            self[param] = {} if default is None else default
        return self[param]


def _is_tensor(x) -> bool:
    return hasattr(x, "data") and hasattr(x, "requires_grad") and isinstance(
        getattr(x, "data", None), np.ndarray)


class Optimizer:
    """Base class: holds ``param_groups`` (a list of dicts with ``"params"`` and the group's
    hyper-parameters) and ``state`` (a mapping parameter -> dict of numpy arrays and numbers).

    ``params`` is an iterable of tensors, or of dicts ``{"params": [...], "lr": ...}`` whose
    missing hyper-parameters come from ``defaults``. Subclasses implement ``step()`` and
    ``_validate(group)``.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state = _ParamState()
        self.param_groups: list[dict] = []
        name = type(self).__name__
        if _is_tensor(params):
            raise TypeError(f"{name}: params must be an iterable of tensors or of dicts, got a "
                            "single tensor (wrap it in a list)")
        if callable(getattr(params, "parameters", None)):
            raise TypeError(f"{name}: params must be an iterable of tensors or of dicts, got the "
                            f"module {type(params).__name__}; pass its parameters: "
                            f"{name}(model.parameters(), ...)")
        if not isinstance(params, Iterable):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors or "
                            f"of dicts, got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Adds a group (``{"params": ..., hyper-parameters}``), e.g. to unfreeze layers while
        training; unspecified hyper-parameters take the optimizer's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{type(self).__name__}: a param group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{type(self).__name__}: param group has no 'params' entry")
        params = [params] if _is_tensor(params) else list(params)
        for i, p in enumerate(params):
            if not _is_tensor(p):
                raise TypeError(f"{type(self).__name__}: can only optimize tensors, but "
                                f"parameter {i} of the group is {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: some parameters appear more than once "
                             "(in this group or in another one)")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        unknown = sorted(set(group) - set(self.defaults) - {"params", "initial_lr"})
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown hyper-parameter(s) {unknown}; "
                             f"expected some of {sorted(self.defaults)}")
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict) -> None:
        _check_nonnegative(type(self).__name__, group, "lr")

    def step(self) -> None:
        raise NotImplementedError

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drops every parameter's gradient (``grad = None``), or fills it with zeros when
        ``set_to_none=False``."""
        zero_grad(itertools.chain.from_iterable(g["params"] for g in self.param_groups),
                  set_to_none)

    def _param_arrays(self, p) -> tuple[np.ndarray, np.ndarray]:
        # The kernels take arrays of one dtype and layout; a gradient accumulated in another
        # dtype or layout is converted here rather than read with the wrong strides.
        param = p.data
        grad = p.grad.data if hasattr(p.grad, "data") else np.asarray(p.grad)
        if grad.shape != param.shape:
            raise ValueError(f"{type(self).__name__}: gradient shape {grad.shape} does not match "
                             f"parameter shape {param.shape}")
        return param, np.ascontiguousarray(grad, dtype=param.dtype)

    # -- serialization ------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """``{"state": {index: {name: array or number}}, "param_groups": [{..., "params":
        [index, ...]}]}`` with parameters numbered in group order, as in PyTorch. Arrays are
        copies, so the dict is a snapshot."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for p in self.state:
            if id(p) in index:
                state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                       for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores hyper-parameters and state from :meth:`state_dict` (for instance after
        :func:`nnx.load`). The groups must have the same sizes; arrays must match the shapes of
        their parameters and are converted to the parameters' dtypes."""
        name = type(self).__name__
        groups = state_dict.get("param_groups")
        saved_state = state_dict.get("state")
        if not isinstance(groups, list) or not isinstance(saved_state, dict):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups', as returned by state_dict()")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(groups)} param "
                             f"group(s), this optimizer has {len(self.param_groups)}")
        params_by_index = {}
        for i, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: param group {i} has "
                                 f"{len(saved['params'])} parameters in the state, "
                                 f"{len(group['params'])} in this optimizer")
            for idx, p in zip(saved["params"], group["params"]):
                params_by_index[int(idx)] = p
        new_state = _ParamState()
        for key, values in saved_state.items():
            p = params_by_index.get(int(key))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for parameter {key} which is "
                                 "in no param group")
            entry = {}
            for k, v in values.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter "
                                         f"{key} has shape {v.shape}, the parameter has shape "
                                         f"{p.data.shape}")
                    # A fresh aligned buffer, like the state step() allocates itself: the fused
                    # kernels stream over it, and the caller's array stays untouched.
                    restored = _memory.empty_like(p.data)
                    np.copyto(restored, v, casting="same_kind")
                    v = restored
                entry[k] = v
            new_state[p] = entry
        for saved, group in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = self._restore_hyper(k, v)
            self._validate(group)
        self.state = new_state

    def _restore_hyper(self, key: str, value):
        # Checkpoint formats may turn tuples into lists; a default that is a tuple stays one.
        if isinstance(self.defaults.get(key), tuple) and isinstance(value, list):
            return tuple(value)
        return value

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _check_nonnegative(opt: str, group: dict, key: str) -> None:
    value = group[key]
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"{opt}: {key} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{opt}: invalid {key} {value!r}; expected a finite value >= 0")
