"""``Flatten``."""

from __future__ import annotations

import math

from nnx.nn.modules.module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Merges dimensions ``start_dim`` to ``end_dim`` (inclusive) into one, e.g. (N, 1, 28, 28)
    to (N, 784) with the defaults."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        shape = tuple(input.shape)
        ndim = len(shape)
        if ndim == 0:
            return input.reshape((1,))
        start = self.start_dim + ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + ndim if self.end_dim < 0 else self.end_dim
        if not (0 <= start < ndim and 0 <= end < ndim) or start > end:
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do "
                             f"not fit an input of shape {shape}")
        new = shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]
        return input.reshape(new)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
