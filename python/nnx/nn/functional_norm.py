"""Batch normalization and channel dropout as functions (re-exported by ``nnx.nn.functional``).

The normalization math is in the kernel seam ``nnx._kernels``; this module checks arguments,
updates running statistics and wires the kernels into autograd.
"""

from __future__ import annotations

import numpy as np

from nnx import _kernels as K
from nnx.autograd import Function
from nnx.nn.functional import Dropout, _float_input
from nnx.random import default_generator
from nnx.tensor import Tensor

__all__ = ["batch_norm", "dropout2d"]


def _channel_axes(x: np.ndarray) -> tuple:
    return (0,) + tuple(range(2, x.ndim))


class BatchNormTrain(Function):
    """Normalizes with the batch statistics; updates the running statistics (plain arrays, not
    part of the graph) in place when they are given."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps, running_mean, running_var, momentum):
        y, mean, invstd = K.batch_norm_forward_train(x, gamma, beta, eps)
        ctx.save_for_backward(x, gamma, mean, invstd)
        if running_mean is not None:
            # The kernel returns 1 / sqrt(var + eps) with var the biased batch variance; the
            # running variance takes the unbiased one, var * m / (m - 1), as PyTorch does.
            m = x.size // x.shape[1]
            var = 1.0 / np.square(invstd.astype(np.float64)) - eps
            unbiased = np.maximum(var, 0.0) * (m / (m - 1))
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean.astype(np.float64)
            running_var *= 1.0 - momentum
            running_var += momentum * unbiased
        return y

    @staticmethod
    def backward(ctx, g):
        x, gamma, mean, invstd = ctx.saved_tensors
        gx, ggamma, gbeta = K.batch_norm_backward(g, x, gamma, mean, invstd)
        nx, ngamma, nbeta = ctx.needs_input_grad[:3]
        return (gx if nx else None, ggamma if ngamma else None, gbeta if nbeta else None,
                None, None, None, None)


class BatchNormEval(Function):
    """Normalizes with fixed statistics: a per-channel affine map, y = x * scale + shift."""

    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean, running_var, eps):
        ctx.save_for_backward(x, gamma, running_mean, running_var)
        ctx.eps = eps
        return K.batch_norm_forward_eval(x, running_mean, running_var, gamma, beta, eps)

    @staticmethod
    def backward(ctx, g):
        x, gamma, mean, var = ctx.saved_tensors
        nx, ngamma, nbeta = ctx.needs_input_grad[:3]
        axes = _channel_axes(x)
        gx = ggamma = gbeta = None
        if nx:
            # grad_x = g * gamma / sqrt(var + eps): the eval forward of g with a zero mean and
            # no shift computes exactly that.
            gx = K.batch_norm_forward_eval(g, np.zeros_like(mean), var, gamma, None, ctx.eps)
        if ngamma:
            xhat = K.batch_norm_forward_eval(x, mean, var, None, None, ctx.eps)
            ggamma = (g * xhat).sum(axis=axes)
        if nbeta:
            gbeta = g.sum(axis=axes)
        return gx, ggamma, gbeta, None, None, None


def _stat_array(value, name: str, channels: int) -> np.ndarray | None:
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError(f"batch_norm: {name} must be a float Tensor or array, got "
                        f"{getattr(array, 'dtype', type(array).__name__)}")
    if array.shape != (channels,):
        raise ValueError(f"batch_norm: {name} must have shape ({channels},) (one per channel), "
                         f"got {array.shape}")
    return array


def batch_norm(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalizes each channel (axis 1) of input (N, C) or (N, C, ...):
    y = weight * (x - mean) / sqrt(var + eps) + bias.

    ``training=True``: mean and (biased) var of the batch, over every axis but 1; the running
    statistics, when given, are updated in place as running = (1 - momentum) * running +
    momentum * batch_stat, with the unbiased variance for ``running_var`` (as PyTorch).
    ``training=False``: ``running_mean`` and ``running_var`` are used and must be given.
    """
    who = "batch_norm"
    x = _float_input(input, who)
    if x.ndim < 2:
        raise ValueError(f"{who}: input must be (N, C) or (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    mean = _stat_array(running_mean, "running_mean", channels)
    var = _stat_array(running_var, "running_var", channels)
    if (mean is None) != (var is None):
        raise ValueError(f"{who}: give both running_mean and running_var, or neither")
    params = {}
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            t = _float_input(t, who, name)
            if t.shape != (channels,):
                raise ValueError(f"{who}: {name} must have shape ({channels},) (one per "
                                 f"channel), got {t.shape}")
            if t.dtype != x.dtype:
                raise TypeError(f"{who}: input is {x.dtype} but {name} is {t.dtype}; convert "
                                "one (e.g. with .float() or .double())")
        params[name] = t
    if not eps >= 0:
        raise ValueError(f"{who}: eps must be non-negative, got {eps}")
    if training:
        if x.numel() // max(channels, 1) <= 1:
            raise ValueError(f"{who}: expected more than 1 value per channel when training, "
                             f"got input shape {x.shape}")
        return BatchNormTrain.apply(x, params["weight"], params["bias"], float(eps), mean, var,
                                    float(momentum))
    if mean is None:
        raise ValueError(f"{who}: running_mean and running_var are required when "
                         "training=False")
    return BatchNormEval.apply(x, params["weight"], params["bias"],
                               mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False),
                               float(eps))


def dropout2d(input, p: float = 0.5, training: bool = True) -> Tensor:  # noqa: A002
    """Channel dropout for input (N, C, H, W): zeroes each whole channel map with probability p
    and scales the kept ones by 1 / (1 - p) (inverted, so evaluation needs no rescaling).
    Identity when not training or p == 0. The mask is drawn from nnx's generator."""
    x = _float_input(input, "dropout2d")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be a probability in [0, 1], got {p!r}")
    if x.ndim != 4:
        raise ValueError(f"dropout2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if not training or p == 0.0:
        return x
    shape = x.shape[:2] + (1, 1)
    if p == 1.0:
        mask = np.zeros(shape, x.dtype)
    else:
        keep = default_generator().random(shape, dtype=np.float32) < 1.0 - p
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(x, mask)
