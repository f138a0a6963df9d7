"""Activation modules: thin wrappers over ``nnx.nn.functional``."""

from __future__ import annotations

from nnx.nn import functional as F
from nnx.nn.modules.module import Module

__all__ = ["ELU", "Hardsigmoid", "LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax",
           "Softplus", "Tanh"]


class ReLU(Module):
    def forward(self, input):
        return F.relu(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Hardsigmoid(Module):
    """``clip(x + 3, 0, 6) / 6``."""

    def forward(self, input):
        return F.hardsigmoid(input)


class Softplus(Module):
    """``log(1 + exp(x))``, the identity above x > 20. Unlike PyTorch, ``beta`` is fixed at 1 and
    ``threshold`` at 20."""

    def forward(self, input):
        return F.softplus(input)


class LeakyReLU(Module):
    """``x`` for x > 0, ``negative_slope * x`` otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softmax(Module):
    """Softmax along ``dim``. Unlike PyTorch (where omitting ``dim`` is deprecated and guessed),
    ``dim`` defaults to -1, the class axis of (N, C) scores."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """Log-softmax along ``dim`` (default -1, see ``Softmax``)."""

    def forward(self, input):
        return F.log_softmax(input, dim=self.dim)
