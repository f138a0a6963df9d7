"""``Dropout`` and ``Dropout2d``."""

from __future__ import annotations

from nnx.nn import functional as F
from nnx.nn.modules.module import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module):
    """Inverted dropout: in training mode zeroes each element with probability ``p`` (mask from
    nnx's global generator) and scales the rest by ``1 / (1 - p)``; the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, input):
        return F.dropout(input, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Module):
    """Channel dropout for input (N, C, H, W): in training mode zeroes each whole channel map
    with probability ``p`` (mask from nnx's global generator) and scales the kept ones by
    ``1 / (1 - p)``; the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, input):
        return F.dropout2d(input, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
