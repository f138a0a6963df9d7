"""Pooling modules: ``MaxPool1d``, ``MaxPool2d``, ``AvgPool1d``, ``AvgPool2d``,
``AdaptiveAvgPool2d``. Arguments are stored as given (ints or pairs), as PyTorch's, and checked
when the module is built."""

from __future__ import annotations

from nnx.nn import functional_conv as FC
from nnx.nn.functional_conv import _ints
from nnx.nn.modules.module import Module

__all__ = ["AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d"]


class _Pool(Module):
    _dims = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        who, n = type(self).__name__, self._dims
        kernel = _ints(kernel_size, n, "kernel_size", who, 1)
        if stride is not None:
            _ints(stride, n, "stride", who, 1)
        pad = _ints(padding, n, "padding", who, 0)
        if any(2 * p > k for p, k in zip(pad, kernel)):
            raise ValueError(f"{who}: padding {padding!r} must be at most half of kernel_size "
                             f"{kernel_size!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding


class MaxPool2d(_Pool):
    """Maximum over kH x kW windows of input (N, C, H, W); ``stride`` defaults to
    ``kernel_size``; padding (at most half the kernel) counts as -inf. ``return_indices``: also
    return the flat positions h * W + w of the maxima. ``dilation`` and ``ceil_mode`` accept
    only their defaults."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding)
        FC._unsupported(type(self).__name__, self._dims, dilation=dilation, ceil_mode=ceil_mode)
        self.dilation = dilation
        self.return_indices = bool(return_indices)
        self.ceil_mode = False

    def forward(self, input):
        return FC.max_pool2d(input, self.kernel_size, self.stride, self.padding,
                             return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(MaxPool2d):
    """``MaxPool2d`` over the last axis of input (N, C, L)."""

    _dims = 1

    def forward(self, input):
        return FC.max_pool1d(input, self.kernel_size, self.stride, self.padding,
                             return_indices=self.return_indices)


class AvgPool2d(_Pool):
    """Mean over kH x kW windows of input (N, C, H, W); ``stride`` defaults to ``kernel_size``.
    With zero padding, ``count_include_pad=True`` divides every window by kH * kW and ``False``
    by the number of real input positions it covers (see ``functional.avg_pool2d``).
    ``ceil_mode`` and ``divisor_override`` accept only their defaults."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__(kernel_size, stride, padding)
        FC._unsupported(type(self).__name__, self._dims, ceil_mode=ceil_mode,
                        divisor_override=divisor_override)
        self.ceil_mode = False
        self.count_include_pad = bool(count_include_pad)

    def forward(self, input):
        return FC.avg_pool2d(input, self.kernel_size, self.stride, self.padding,
                             count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(AvgPool2d):
    """``AvgPool2d`` over the last axis of input (N, C, L)."""

    _dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        # Shown as 1-tuples, as PyTorch's AvgPool1d does.
        self.kernel_size = _ints(self.kernel_size, 1, "kernel_size", "AvgPool1d", 1)
        self.stride = _ints(self.stride, 1, "stride", "AvgPool1d", 1)
        self.padding = _ints(self.padding, 1, "padding", "AvgPool1d", 0)

    def forward(self, input):
        return FC.avg_pool1d(input, self.kernel_size, self.stride, self.padding,
                             count_include_pad=self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average pooling of input (N, C, H, W) to a fixed ``output_size``: P (P x P) or (P, Q),
    None keeping the input's size; ``AdaptiveAvgPool2d(1)`` is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
            _ints(tuple(1 if s is None else s for s in output_size), 2, "output_size",
                  "AdaptiveAvgPool2d", 1)
        else:
            _ints(output_size, 2, "output_size", "AdaptiveAvgPool2d", 1)
        self.output_size = output_size

    def forward(self, input):
        return FC.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
