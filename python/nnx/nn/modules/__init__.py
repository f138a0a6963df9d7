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
from nnx.nn.modules.adaptive_pooling import AdaptiveMaxPool1d
from nnx.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d
from nnx.nn.modules.container import ModuleList, Sequential
from nnx.nn.modules.conv import Conv1d, Conv2d
from nnx.nn.modules.dropout import Dropout, Dropout2d
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
from nnx.nn.modules.pooling import AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from nnx.nn.modules.rnn import LSTM, RNN, LSTMCell, RNNCell
from nnx.nn.modules.sparse import Embedding
from nnx.nn.parameter import Parameter

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AvgPool1d", "AvgPool2d", "BCEWithLogitsLoss",
           "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d", "CrossEntropyLoss", "Dropout",
           "Dropout2d", "ELU", "Embedding", "Flatten", "Hardsigmoid", "Identity", "L1Loss", "LSTM",
           "LSTMCell", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool1d", "MaxPool2d",
           "Module", "ModuleList", "MultiClassHingeLoss", "Parameter", "RNN", "RNNCell", "ReLU",
           "Sequential", "Sigmoid", "Softmax", "Softplus", "Tanh"]
