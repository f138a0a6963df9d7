"""Layers, activations, losses and containers (``nnx.nn`` re-exports them)."""

from nnx.nn.modules.activation import (
    ELU,
    Hardsigmoid,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from nnx.nn.modules.container import ModuleList, Sequential
from nnx.nn.modules.dropout import Dropout
from nnx.nn.modules.flatten import Flatten
from nnx.nn.modules.linear import Identity, Linear
from nnx.nn.modules.loss import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    MultiClassHingeLoss,
)
from nnx.nn.modules.module import Module
from nnx.nn.parameter import Parameter

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "ELU", "Flatten", "Hardsigmoid",
           "Identity", "L1Loss", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "Module",
           "ModuleList", "MultiClassHingeLoss", "Parameter", "ReLU", "Sequential", "Sigmoid",
           "Softmax", "Softplus", "Tanh"]
