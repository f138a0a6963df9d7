"""``AdaptiveMaxPool1d``: max pooling to a fixed output length; ``AdaptiveMaxPool1d(1)`` is the
max-over-time pooling of a text CNN."""

from __future__ import annotations

from nnx.nn import functional_conv as FC
from nnx.nn.functional_conv import _ints
from nnx.nn.modules.module import Module

__all__ = ["AdaptiveMaxPool1d"]


class AdaptiveMaxPool1d(Module):
    """Max pooling of input (N, C, L) (or (C, L)) to (N, C, output_size): output cell j takes the
    maximum over positions floor(j L / P) to ceil((j + 1) L / P) - 1. ``return_indices``: also
    return the positions of the maxima along L."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        size = output_size[0] if isinstance(output_size, (tuple, list)) and len(
            output_size) == 1 else output_size
        _ints(size, 1, "output_size", "AdaptiveMaxPool1d", 1)
        self.output_size = output_size
        self.return_indices = bool(return_indices)

    def forward(self, input):  # noqa: A002
        return FC.adaptive_max_pool1d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
