"""Weight initialisation, in place, as ``torch.nn.init``.

Every function fills ``tensor`` (a Tensor or Parameter, or a plain numpy array) in place without
recording autograd history and returns it. Random values come from nnx's one generator
(``nnx.random.default_generator()``), so ``nnx.manual_seed`` makes them repeat. Values are drawn in
float64 and rounded to the tensor's dtype.

Fans follow PyTorch: for a weight of shape (out, in, *kernel), ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.
"""

from __future__ import annotations

import math

import numpy as np

from nnx import random as _random

__all__ = ["calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_",
           "ones_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_"]

_LINEAR = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
           "conv_transpose2d", "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity: 1 for linear/conv/sigmoid, 5/3 for tanh,
    sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope ``param``, default 0.01),
    3/4 for selu."""
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{_LINEAR + ('tanh', 'relu', 'leaky_relu', 'selu')}")


def _array(tensor, fn: str) -> np.ndarray:
    data = tensor if isinstance(tensor, np.ndarray) else getattr(tensor, "data", None)
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{fn}: expected a Tensor or numpy array, got {type(tensor).__name__}")
    if data.dtype.kind != "f":
        raise TypeError(f"{fn}: can only initialise floating-point tensors, got {data.dtype}")
    return data


def _fill(tensor, values, fn: str):
    data = _array(tensor, fn)
    data[...] = values
    cell = getattr(tensor, "_version_cell", None)  # a Tensor's, so backward sees the change
    if cell is not None:
        cell[0] += 1
    return tensor


def _fans(shape: tuple[int, ...], fn: str) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"{fn}: fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: tuple[int, ...], mode: str, fn: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{fn}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(shape, fn)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"{fn}: cannot initialise a tensor of shape {shape} ({mode} is 0)")
    return fan


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fills with U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    shape = _array(tensor, "uniform_").shape
    return _fill(tensor, _random.default_generator().uniform(a, b, shape), "uniform_")


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fills with N(mean, std^2); ``normal_(w, 0, 0.01)`` is the classic ``0.01 * randn``."""
    if not std >= 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    shape = _array(tensor, "normal_").shape
    values = _random.default_generator().standard_normal(shape) * std + mean
    return _fill(tensor, values, "normal_")


def constant_(tensor, val: float):
    return _fill(tensor, val, "constant_")


def zeros_(tensor):
    return _fill(tensor, 0, "zeros_")


def ones_(tensor):
    return _fill(tensor, 1, "ones_")


def xavier_uniform_(tensor, gain: float = 1.0):
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_array(tensor, "xavier_uniform_").shape, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    """Glorot normal: N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_array(tensor, "xavier_normal_").shape, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu"):
    """He uniform: U(-b, b) with ``b = gain * sqrt(3 / fan)``, ``gain =
    calculate_gain(nonlinearity, a)``. ``a = sqrt(5)`` gives Linear's default weight init,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan = _fan(_array(tensor, "kaiming_uniform_").shape, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu"):
    """He normal: N(0, std^2) with ``std = gain / sqrt(fan)`` (sqrt(2 / fan_in) for relu)."""
    fan = _fan(_array(tensor, "kaiming_normal_").shape, mode, "kaiming_normal_")
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))
