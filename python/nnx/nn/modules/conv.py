"""``Conv1d`` and ``Conv2d``."""

from __future__ import annotations

import math

import numpy as np

from nnx import _memory
from nnx.nn import functional_conv as FC
from nnx.nn import init
from nnx.nn.functional_conv import _ints
from nnx.nn.modules.module import Module
from nnx.nn.parameter import Parameter

__all__ = ["Conv1d", "Conv2d"]


class _ConvNd(Module):
    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, dtype=np.float32):
        super().__init__()
        who, n = type(self).__name__, self._dims
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
        if groups != 1:
            raise NotImplementedError(f"{who}: groups={groups!r} is not supported (only 1)")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = _ints(kernel_size, n, "kernel_size", who, 1)
        self.stride = _ints(stride, n, "stride", who, 1)
        self.padding = _ints(padding, n, "padding", who, 0)
        self.dilation = _ints(dilation, n, "dilation", who, 1)
        self.groups = 1
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(_memory.empty(shape, dtype))
        if bias:
            self.bias = Parameter(_memory.empty((self.out_channels,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
        fan_in = in_channels * prod(kernel_size) (``kaiming_uniform_(a=sqrt(5))``)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_channels * math.prod(self.kernel_size))
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        n = self._dims
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over input (N, in_channels, H, W); weight
    (out_channels, in_channels, kH, kW), bias (out_channels,). ``kernel_size``, ``stride``,
    ``padding`` and ``dilation`` are ints or (height, width) pairs. As PyTorch's, except that
    ``groups`` must be 1, padding is zeros only, and ``dtype`` (an nnx addition) defaults to
    float32. Default initialisation: see ``reset_parameters``."""

    _dims = 2

    def forward(self, input):
        return FC.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def forward_relu(self, input):
        """``relu(self(input))`` in one kernel call (an nnx addition, used by models where a
        ReLU directly follows the convolution)."""
        return FC._conv2d(input, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, relu=True)


class Conv1d(_ConvNd):
    """1-D convolution over input (N, in_channels, L); weight (out_channels, in_channels, kL).
    Same arguments and differences from PyTorch as ``Conv2d``, with ints or 1-tuples."""

    _dims = 1

    def forward(self, input):
        return FC.conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)
