"""``Linear`` and ``Identity``."""

from __future__ import annotations

import math

import numpy as np

from nnx import _memory
from nnx.nn import functional as F
from nnx.nn import init
from nnx.nn.modules.module import Module
from nnx.nn.parameter import Parameter

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """Returns its input; accepts and ignores any constructor arguments (as PyTorch's)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features), computed
    as one GEMM with the bias added in its epilogue.

    Default initialisation as PyTorch: weight and bias from U(-1/sqrt(in_features),
    1/sqrt(in_features)) (``kaiming_uniform_(a=sqrt(5))`` for the weight), drawn from nnx's
    global generator. ``dtype`` (an nnx addition) defaults to float32.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(_memory.empty((self.out_features, self.in_features), dtype))
        if bias:
            self.bias = Parameter(_memory.empty((self.out_features,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.in_features == 0:
            init.zeros_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)
            return
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def forward_relu(self, input):
        """``relu(self(input))`` in one GEMM (an nnx addition, used by models where a ReLU
        directly follows the layer)."""
        return F._linear(input, self.weight, self.bias, relu=True)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
