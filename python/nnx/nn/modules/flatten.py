"""``Flatten``."""

from __future__ import annotations

from nnx.nn.modules.module import Module
from nnx.tensor import Tensor

__all__ = ["Flatten"]


class Flatten(Module):
    """Merges dimensions ``start_dim`` to ``end_dim`` (inclusive) into one, e.g. (N, 1, 28, 28)
    to (N, 784) with the defaults."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        if not isinstance(input, Tensor):
            raise TypeError(f"Flatten: input must be a Tensor, got {type(input).__name__}")
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
