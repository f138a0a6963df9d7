"""Convolution and pooling as functions (re-exported by ``nnx.nn.functional``).

Layout is NCHW (NCL for the 1-D forms, which run as 2-D ops with height 1). The math is in the
kernel seam ``nnx._kernels``; this module checks arguments and wires the kernels into autograd.
``kernel_size``, ``stride``, ``padding`` and ``dilation`` take an int or a (height, width) pair.

Differences from PyTorch: inputs must be batched (4-D, resp. 3-D for the 1-D forms); ``groups``
must be 1; pooling has no ``dilation`` or ``ceil_mode`` (only their defaults are accepted) and
``avg_pool2d`` no ``divisor_override``; ``padding`` must be numbers (no ``'same'``/``'valid'``).
Unsupported values raise ``NotImplementedError``.
"""

from __future__ import annotations

import numpy as np

from nnx import _kernels as K
from nnx.autograd import Function
from nnx.nn.functional import _float_input
from nnx.tensor import Tensor

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool1d", "avg_pool1d", "avg_pool2d", "conv1d",
           "conv2d", "max_pool1d", "max_pool2d"]


def _ints(value, n: int, name: str, who: str, minimum: int) -> tuple:
    """``value`` (an int, or a tuple/list of n ints) as a tuple of n Python ints >= minimum."""
    # The common case first, cheaply (every call of a layer passes its own checked tuples).
    if type(value) is tuple and len(value) == n:
        for v in value:
            if type(v) is not int or v < minimum:
                break
        else:
            return value

    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if is_int(value):
        values = (int(value),) * n
    elif isinstance(value, (tuple, list)) and len(value) == n and all(map(is_int, value)):
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{who}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        bound = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{who}: {name} must be {bound}, got {value!r}")
    return values


def _same_dtype(who: str, x: Tensor, **others) -> None:
    for name, t in others.items():
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{who}: input is {x.dtype} but {name} is {t.dtype}; convert one "
                            "(e.g. with .float() or .double())")


def _check_window(who: str, shape: tuple, kernel: tuple, padding: tuple, dilation: tuple) -> None:
    """The (dilated) window must fit the padded input, so that every output size is >= 1."""
    spatial = shape[2:]
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    padded = tuple(s + 2 * p for s, p in zip(spatial, padding))
    if any(w > s for w, s in zip(span, padded)):
        dilated = f" (dilated to {span})" if span != kernel else ""
        raise ValueError(f"{who}: kernel size {kernel}{dilated} is larger than the padded input "
                         f"{padded} (input shape {shape}, padding {padding})")


# ---------------------------------------------------------------------------------------------
# Convolution


class Conv2d(Function):
    """Cross-correlation of x (N, C, H, W) with w (K, C, R, S) plus b (K,); optionally followed
    by ReLU inside the same kernel call, whose mask backward applies to the output gradient."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, relu):
        y = K.conv2d_forward(x, w, b, stride, padding, dilation, relu)
        ctx.save_for_backward(x, w, y if relu else None)
        ctx.geometry = stride, padding, dilation
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        if y is not None:  # the fused ReLU: y > 0 exactly where x > 0 was kept
            g = K.act_backward("relu", g, y, y)
        # Only the gradients that are needed: the first layer's input gradient is the costliest
        # part of its backward and nobody wants it.
        needs = ctx.needs_input_grad[:3]
        gx, gw, gb = K.conv2d_backward(g, x, w, *ctx.geometry, needs=needs)
        return gx, gw, gb, None, None, None, None


def _conv_args(who: str, x, weight, bias, stride, padding, dilation, groups, n: int):
    """Checked (x, w, b, stride, padding, dilation) of an n-D convolution (n = 1 or 2)."""
    x = _float_input(x, who)
    w = _float_input(weight, who, "weight")
    b = None if bias is None else _float_input(bias, who, "bias")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{who}: groups must be a positive int, got {groups!r}")
    if groups != 1:
        raise NotImplementedError(f"{who}: groups={groups} is not supported (only groups=1)")
    layout, kernel_dims = ("(N, C, H, W)", "kH, kW") if n == 2 else ("(N, C, L)", "kL")
    if x.ndim != n + 2:
        raise ValueError(f"{who}: input must be {n + 2}-D {layout}, got shape {x.shape}")
    if w.ndim != n + 2:
        raise ValueError(f"{who}: weight must be {n + 2}-D (out_channels, in_channels, "
                         f"{kernel_dims}), got shape {w.shape}")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"{who}: weight has {w.shape[1]} input channels but input has "
                         f"{x.shape[1]} (input shape {x.shape})")
    if min(w.shape[2:]) < 1:
        raise ValueError(f"{who}: weight has an empty kernel (weight shape {w.shape})")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{who}: bias must have shape ({w.shape[0]},) (one per output "
                         f"channel), got {b.shape}")
    _same_dtype(who, x, weight=w, bias=b)
    stride = _ints(stride, n, "stride", who, 1)
    padding = _ints(padding, n, "padding", who, 0)
    dilation = _ints(dilation, n, "dilation", who, 1)
    _check_window(who, x.shape, tuple(w.shape[2:]), padding, dilation)
    return x, w, b, stride, padding, dilation


def _conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,  # noqa: A002
            relu: bool = False) -> Tensor:
    """``conv2d``, then with ``relu`` a ReLU fused into the same kernel call. Private because
    PyTorch's ``conv2d`` has no such flag; models call it where a ReLU directly follows."""
    x, w, b, stride, padding, dilation = _conv_args("conv2d", input, weight, bias, stride,
                                                    padding, dilation, groups, 2)
    return Conv2d.apply(x, w, b, stride, padding, dilation, bool(relu))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1) -> Tensor:
    """2-D cross-correlation of input (N, C, H, W) with weight (K, C, kH, kW), plus bias (K,):
    output (N, K, P, Q) with P = (H + 2 padding - dilation (kH - 1) - 1) // stride + 1."""
    return _conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1) -> Tensor:
    """1-D cross-correlation of input (N, C, L) with weight (K, C, kL), plus bias (K,), computed
    as ``conv2d`` on a height-1 image."""
    x, w, b, (s,), (p,), (d,) = _conv_args("conv1d", input, weight, bias, stride, padding,
                                           dilation, groups, 1)
    y = Conv2d.apply(x.unsqueeze(2), w.unsqueeze(2), b, (1, s), (0, p), (1, d), False)
    return y.squeeze(2)


# ---------------------------------------------------------------------------------------------
# Pooling


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        y, indices = K.max_pool2d_forward(x, kernel, stride, padding)
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        return y, indices

    @staticmethod
    def backward(ctx, g, _indices_grad):
        (indices,) = ctx.saved_tensors
        return K.max_pool2d_backward(g, indices, ctx.x_shape), None, None, None


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, count_include_pad):
        ctx.x_shape = x.shape
        ctx.geometry = kernel, stride, padding, count_include_pad
        return K.avg_pool2d_forward(x, kernel, stride, padding, count_include_pad)

    @staticmethod
    def backward(ctx, g):
        return K.avg_pool2d_backward(g, ctx.x_shape, *ctx.geometry), None, None, None, None


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        ctx.x_shape = x.shape
        return K.adaptive_avg_pool2d_forward(x, output_size)

    @staticmethod
    def backward(ctx, g):
        return K.adaptive_avg_pool2d_backward(g, ctx.x_shape), None


def _pool_args(who: str, x, kernel_size, stride, padding, n: int):
    """Checked (x, kernel, stride, padding) of an n-D pooling; stride None (or empty) means
    kernel_size, as in PyTorch."""
    x = _float_input(x, who)
    layout = "(N, C, H, W)" if n == 2 else "(N, C, L)"
    if x.ndim != n + 2:
        raise ValueError(f"{who}: input must be {n + 2}-D {layout}, got shape {x.shape}")
    kernel = _ints(kernel_size, n, "kernel_size", who, 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    stride = _ints(stride, n, "stride", who, 1)
    padding = _ints(padding, n, "padding", who, 0)
    # PyTorch's rule; it also guarantees that every window holds at least one input element.
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{who}: padding {padding} must be at most half of kernel_size "
                         f"{kernel}")
    _check_window(who, x.shape, kernel, padding, (1,) * n)
    return x, kernel, stride, padding


def _unsupported(who: str, n: int, dilation=1, ceil_mode=False, divisor_override=None) -> None:
    if any(d != 1 for d in _ints(dilation, n, "dilation", who, 1)):
        raise NotImplementedError(f"{who}: dilation={dilation!r} is not supported (only 1)")
    if ceil_mode:
        raise NotImplementedError(f"{who}: ceil_mode=True is not supported")
    if divisor_override is not None:
        raise NotImplementedError(f"{who}: divisor_override is not supported")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False):
    """Maximum over each kH x kW window of input (N, C, H, W); padding counts as -inf and must be
    at most half the kernel. With ``return_indices`` also returns the int64 flat position
    ``h * W + w`` of each maximum in its input plane (PyTorch's convention)."""
    _unsupported("max_pool2d", 2, dilation=dilation, ceil_mode=ceil_mode)
    x, kernel, stride, padding = _pool_args("max_pool2d", input, kernel_size, stride, padding, 2)
    y, indices = MaxPool2d.apply(x, kernel, stride, padding)
    return (y, indices) if return_indices else y


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Mean over each kH x kW window of input (N, C, H, W). Zero padding (at most half the
    kernel) is added on every side; ``count_include_pad=True`` divides every window by
    kH * kW, padded positions included, while ``False`` divides by the number of real input
    positions in the window, so border outputs are not pulled towards zero."""
    who = "avg_pool2d"
    _unsupported(who, 2, ceil_mode=ceil_mode, divisor_override=divisor_override)
    x, kernel, stride, padding = _pool_args(who, input, kernel_size, stride, padding, 2)
    return AvgPool2d.apply(x, kernel, stride, padding, bool(count_include_pad))


def adaptive_avg_pool2d(input, output_size) -> Tensor:  # noqa: A002
    """Average pooling of input (N, C, H, W) to output (N, C, P, Q) for ``output_size`` P (P x P)
    or (P, Q), where None keeps the input's size. Output cell i averages input rows
    floor(i H / P) to ceil((i + 1) H / P) - 1, and the same for columns."""
    who = "adaptive_avg_pool2d"
    x = _float_input(input, who)
    if x.ndim != 4:
        raise ValueError(f"{who}: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(s if v is None else v for v, s in zip(output_size, x.shape[2:]))
    size = _ints(output_size, 2, "output_size", who, 1)
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{who}: input has an empty plane (input shape {x.shape})")
    return AdaptiveAvgPool2d.apply(x, size)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False):
    """``max_pool2d`` over the last axis of input (N, C, L); indices are positions along L."""
    who = "max_pool1d"
    _unsupported(who, 1, dilation=dilation, ceil_mode=ceil_mode)
    x, (k,), (s,), (p,) = _pool_args(who, input, kernel_size, stride, padding, 1)
    y, indices = MaxPool2d.apply(x.unsqueeze(2), (1, k), (1, s), (0, p))
    y = y.squeeze(2)
    return (y, indices.squeeze(2)) if return_indices else y


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True) -> Tensor:
    """``avg_pool2d`` over the last axis of input (N, C, L)."""
    who = "avg_pool1d"
    _unsupported(who, 1, ceil_mode=ceil_mode)
    x, (k,), (s,), (p,) = _pool_args(who, input, kernel_size, stride, padding, 1)
    return AvgPool2d.apply(x.unsqueeze(2), (1, k), (1, s), (0, p),
                           bool(count_include_pad)).squeeze(2)


# ---------------------------------------------------------------------------------------------
# Adaptive max pooling over time (the pooling of a text CNN)


class AdaptiveMaxPool1d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        y, indices = K.adaptive_max_pool1d_forward(x, output_size)
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        return y, indices

    @staticmethod
    def backward(ctx, g, _indices_grad):
        (indices,) = ctx.saved_tensors
        return K.adaptive_max_pool1d_backward(g, indices, ctx.x_shape), None


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):  # noqa: A002
    """Max pooling of input (N, C, L) to (N, C, P) for ``output_size`` P: output cell j is the
    maximum over positions floor(j L / P) to ceil((j + 1) L / P) - 1, so P = 1 is the
    max-over-time pooling of a text CNN. With ``return_indices`` also returns the int64
    positions along L of the maxima (the first on ties). A 2-D input (C, L) is treated as one
    sample, as in PyTorch."""
    who = "adaptive_max_pool1d"
    x = _float_input(input, who)
    if x.ndim not in (2, 3):
        raise ValueError(f"{who}: input must be 3-D (N, C, L) or 2-D (C, L), got shape {x.shape}")
    if isinstance(output_size, (tuple, list)) and len(output_size) == 1:
        output_size = output_size[0]
    (size,) = _ints(output_size, 1, "output_size", who, 1)
    if x.shape[-1] < 1:
        raise ValueError(f"{who}: input has length 0 (input shape {x.shape})")
    unbatched = x.ndim == 2
    y, indices = AdaptiveMaxPool1d.apply(x.unsqueeze(0) if unbatched else x, size)
    if unbatched:
        y, indices = y.squeeze(0), indices.squeeze(0)
    return (y, indices) if return_indices else y
