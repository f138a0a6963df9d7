"""``BatchNorm1d`` and ``BatchNorm2d``."""

from __future__ import annotations

import numpy as np

from nnx import _memory
from nnx.nn import functional_norm as FN
from nnx.nn import init
from nnx.nn.modules.module import Module
from nnx.nn.parameter import Parameter
from nnx.tensor import Tensor

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    _input_ndims: tuple = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        who = type(self).__name__
        if (isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer))
                or num_features < 1):
            raise ValueError(f"{who}: num_features must be a positive int, got {num_features!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{who}: momentum must be in [0, 1] or None, got {momentum!r}")
        if not eps >= 0:
            raise ValueError(f"{who}: eps must be non-negative, got {eps!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(_memory.empty((c,), dtype))
        else:
            self.register_parameter("weight", None)
        if self.affine and bias:
            self.bias = Parameter(_memory.empty((c,), dtype))
        else:
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(_memory.zeros((c,), dtype)))
            self.register_buffer("running_var", Tensor(_memory.empty((c,), dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        """Running mean 0, running variance 1, weight 1, bias 0 (as PyTorch)."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        ndim = getattr(input, "ndim", None)
        if ndim not in self._input_ndims:
            shape = getattr(input, "shape", None)
            raise ValueError(f"{type(self).__name__}: expected input {self._layout}, got shape "
                             f"{shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if self.momentum is None:  # a cumulative average over all batches so far
                factor = 1.0 / float(self.num_batches_tracked.data)
        # Batch statistics in training mode, and also in eval mode without running statistics.
        use_batch_stats = self.training or self.running_mean is None
        tracked = not self.training or self.track_running_stats
        return FN.batch_norm(input, self.running_mean if tracked else None,
                             self.running_var if tracked else None, self.weight, self.bias,
                             use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of input (N, C) or (N, C, L) per channel C:
    y = weight * (x - mean) / sqrt(var + eps) + bias. Training mode normalizes with the batch
    statistics and updates ``running_mean``/``running_var`` (buffers, in the state dict with
    ``num_batches_tracked``) as running = (1 - momentum) running + momentum batch_stat, with the
    unbiased batch variance (``momentum=None``: a cumulative average); eval mode uses the
    running statistics, or the batch's when ``track_running_stats=False``. ``weight``/``bias``
    (``affine``; ``bias=False`` drops the bias) start at 1 and 0. As PyTorch's; ``dtype`` (an
    nnx addition) defaults to float32."""

    _input_ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of input (N, C, H, W) per channel, with statistics over N, H and W.
    Otherwise as ``BatchNorm1d``."""

    _input_ndims = (4,)
    _layout = "(N, C, H, W)"
