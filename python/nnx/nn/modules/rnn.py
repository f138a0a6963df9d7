"""Recurrent layers: ``RNN``, ``LSTM`` (multi-layer, optionally bidirectional) and the
single-step ``RNNCell``, ``LSTMCell``.

Arguments, parameter names and shapes, gate order (i, f, g, o), return values and the default
initialisation are PyTorch's, so state dicts load in either direction. Every layer and direction
runs as one autograd node over the whole sequence (``nnx.nn.functional_rnn``), whose forward
and backward are the kernel-seam functions of ``nnx._kernels``; a cell is that node over a
sequence of length 1.

Differences from PyTorch: no ``proj_size`` (only 0) and no packed sequences; ``dtype`` (an nnx
addition) defaults to float32; the input is not converted to the parameters' dtype (a mismatch
raises ``TypeError``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from nnx import _memory
from nnx._shape_ops import cat, stack
from nnx.nn import functional as F
from nnx.nn import init
from nnx.nn.functional import _float_input
from nnx.nn.functional_rnn import (
    _shape_str,
    embedding_source,
    lstm_layer,
    lstm_layer_embedded,
    rnn_layer,
)
from nnx.nn.modules.module import Module
from nnx.nn.parameter import Parameter

__all__ = ["LSTM", "LSTMCell", "RNN", "RNNCell"]

_NONLINEARITIES = ("tanh", "relu")


def _positive_int(who: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
    return int(value)


def _same_dtype(who: str, x, name: str, t) -> None:
    if t.dtype != x.dtype:
        raise TypeError(f"{who}: input is {x.dtype} but {name} is {t.dtype}; convert one (e.g. "
                        "with .float() or .double(), or the module with .to(dtype))")


def _check_features(who: str, x, input_size: int) -> None:
    if x.shape[-1] != input_size:
        raise ValueError(f"{who}: input_size is {input_size} but the input has {x.shape[-1]} "
                         f"features in its last dimension (input shape {_shape_str(x.shape)})")


class _RNNBase(Module):
    """The stack of layers shared by ``RNN`` and ``LSTM``; ``_gates`` is 1 or 4."""

    _gates = 1
    _state_names: tuple = ("h_0",)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=np.float32):
        super().__init__()
        who = type(self).__name__
        self.input_size = _positive_int(who, "input_size", input_size)
        self.hidden_size = _positive_int(who, "hidden_size", hidden_size)
        self.num_layers = _positive_int(who, "num_layers", num_layers)
        if self.num_layers > 1024:  # refused up front, before building layer after layer
            raise ValueError(f"{who}: num_layers must be at most 1024, got {num_layers}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0.0 <= dropout <= 1.0):
            raise ValueError(f"{who}: dropout must be a probability in [0, 1], got {dropout!r}")
        if dropout > 0 and self.num_layers == 1:
            warnings.warn(f"{who}: dropout is applied between layers, so dropout={dropout} with "
                          "num_layers=1 has no effect", UserWarning, stacklevel=3)
        if proj_size != 0:
            raise NotImplementedError(f"{who}: proj_size={proj_size!r} is not supported (only 0)")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = 0
        gate_rows = self._gates * self.hidden_size
        self._flat_weights_names = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * self._directions
            for suffix in ("", "_reverse")[:self._directions]:
                shapes = {f"weight_ih_l{layer}{suffix}": (gate_rows, layer_input),
                          f"weight_hh_l{layer}{suffix}": (gate_rows, self.hidden_size)}
                if self.bias:
                    shapes[f"bias_ih_l{layer}{suffix}"] = (gate_rows,)
                    shapes[f"bias_hh_l{layer}{suffix}"] = (gate_rows,)
                for name, shape in shapes.items():
                    setattr(self, name, Parameter(_memory.empty(shape, dtype)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """PyTorch's default: every weight and bias from U(-1/sqrt(hidden_size),
        1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    @property
    def all_weights(self) -> list:
        """[[weight_ih, weight_hh, (bias_ih, bias_hh)] for each layer and direction]."""
        per = 4 if self.bias else 2
        flat = [getattr(self, n) for n in self._flat_weights_names]
        return [flat[i:i + per] for i in range(0, len(flat), per)]

    def _layer_weights(self, layer: int, direction: int) -> tuple:
        suffix = "_reverse" if direction else ""
        names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
        if self.bias:
            return tuple(getattr(self, n) for n in names) + (
                getattr(self, f"bias_ih_l{layer}{suffix}"),
                getattr(self, f"bias_hh_l{layer}{suffix}"))
        return tuple(getattr(self, n) for n in names) + (None, None)

    # -- forward ------------------------------------------------------------------------------

    def _prepare_input(self, input):  # noqa: A002
        """(x as (T, B, input_size), batched)."""
        who = type(self).__name__
        x = _float_input(input, who)
        if x.ndim not in (2, 3):
            layout = "(batch, seq_len, input_size)" if self.batch_first else \
                "(seq_len, batch, input_size)"
            raise ValueError(f"{who}: input must be 3-D {layout} or 2-D (seq_len, input_size) "
                             f"for one unbatched sequence, got shape {_shape_str(x.shape)}")
        _check_features(who, x, self.input_size)
        weight = self.weight_ih_l0
        _same_dtype(who, x, "weight_ih_l0", weight)
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[0] == 0:
            raise ValueError(f"{who}: input has no time steps (input shape "
                             f"{_shape_str(input.shape)}); the sequence length must be at "
                             "least 1")
        return x, batched

    def _check_state(self, state, name: str, x, batched: bool):
        who = type(self).__name__
        s = _float_input(state, who, name)
        layers = self.num_layers * self._directions
        if batched:
            expected = (layers, x.shape[1], self.hidden_size)
            what = "(num_layers * num_directions, batch, hidden_size)"
        else:
            expected = (layers, self.hidden_size)
            what = "(num_layers * num_directions, hidden_size) for an unbatched input"
        if s.shape != expected:
            raise ValueError(f"{who}: {name} must have shape {what} = {_shape_str(expected)}, got "
                             f"{_shape_str(s.shape)}")
        _same_dtype(who, x, name, s)
        return s if batched else s.unsqueeze(1)

    def _states(self, hx, x, batched: bool) -> tuple:
        """The initial states as (num_layers * num_directions, B, H) tensors, or Nones."""
        names = self._state_names
        if hx is None:
            return (None,) * len(names)
        if len(names) > 1:
            if not isinstance(hx, (tuple, list)) or len(hx) != len(names):
                raise TypeError(f"{type(self).__name__}: hx must be a tuple ({', '.join(names)})"
                                f", got {type(hx).__name__}")
            return tuple(self._check_state(s, n, x, batched) for s, n in zip(hx, names))
        return (self._check_state(hx, names[0], x, batched),)

    def _run_layer(self, x, weights, states):
        raise NotImplementedError

    def _stack(self, x, states):
        """(output (T, B, D H), final states) of all layers for x (T, B, I)."""
        finals = [[] for _ in states]
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions):
                k = layer * self._directions + direction
                initial = [None if s is None else s[k] for s in states]
                seq = layer_input if direction == 0 else layer_input[::-1]
                weights = self._layer_weights(layer, direction)
                source = embedding_source(layer_input) if layer == 0 and self._gates == 4 \
                    else None
                if source is not None:  # input = embedding(ids): one fused node
                    table, ids, pad = source
                    ids = ids if direction == 0 else np.ascontiguousarray(ids[::-1])
                    y, *last = lstm_layer_embedded(ids, table, *weights, *initial,
                                                   padding_idx=pad)
                else:
                    y, *last = self._run_layer(seq, weights, initial)
                outputs.append(y if direction == 0 else y[::-1])
                for f, s in zip(finals, last):
                    f.append(s)
            layer_input = outputs[0] if len(outputs) == 1 else cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, [stack(f, 0) for f in finals]

    def _forward(self, input, hx):  # noqa: A002
        x, batched = self._prepare_input(input)
        output, finals = self._stack(x, self._states(hx, x, batched))
        if not batched:
            return output.squeeze(1), [f.squeeze(1) for f in finals]
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, finals

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    """Multi-layer Elman RNN, ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` with act
    ``nonlinearity`` = ``"tanh"`` or ``"relu"``.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)``. ``rnn(input, h_0=None)`` with input
    (T, B, input_size) ((B, T, input_size) when ``batch_first``; (T, input_size) for one
    unbatched sequence) and h_0 (num_layers * num_directions, B, hidden_size) (zeros when
    omitted) returns ``(output, h_n)``: output (T, B, num_directions * hidden_size) holds the last
    layer's h_t for every t, h_n every layer's final state. ``dropout`` is applied to the output
    of every layer but the last, in training mode. Parameters ``weight_ih_l{k}`` (hidden_size,
    input features of layer k), ``weight_hh_l{k}`` (hidden_size, hidden_size), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (and ``..._reverse`` when bidirectional), initialised from U(-1/sqrt(H),
    1/sqrt(H)). As in PyTorch, ``repr`` does not show the nonlinearity (``rnn.nonlinearity``
    does).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=np.float32):
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be one of {_NONLINEARITIES}, got "
                             f"{nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype)
        self.nonlinearity = nonlinearity

    def _run_layer(self, x, weights, states):
        return rnn_layer(x, *weights, states[0], nonlinearity=self.nonlinearity)

    def forward(self, input, hx=None):  # noqa: A002
        output, (h_n,) = self._forward(input, hx)
        return output, h_n


class LSTM(_RNNBase):
    """Multi-layer long short-term memory, with PyTorch's equations and gate order:

        i = s(W_ii x + b_ii + W_hi h + b_hi)    f = s(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg) o = s(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g                      h' = o * tanh(c')

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0)``. ``lstm(input, (h_0, c_0)=None)`` with input
    (T, B, input_size) ((B, T, input_size) when ``batch_first``; (T, input_size) unbatched) and
    states (num_layers * num_directions, B, hidden_size) (zeros when omitted) returns
    ``(output, (h_n, c_n))``: output (T, B, num_directions * hidden_size) of the last layer and
    every layer's final states. ``dropout`` is applied between layers in training mode.
    Parameters ``weight_ih_l{k}`` (4 hidden_size, input features of layer k), ``weight_hh_l{k}``
    (4 hidden_size, hidden_size), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4 hidden_size,), the row
    blocks in gate order i, f, g, o, initialised from U(-1/sqrt(H), 1/sqrt(H)).
    """

    _gates = 4
    _state_names = ("h_0", "c_0")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=np.float32):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype)

    def _run_layer(self, x, weights, states):
        return lstm_layer(x, *weights, *states)

    def forward(self, input, hx=None):  # noqa: A002
        output, (h_n, c_n) = self._forward(input, hx)
        return output, (h_n, c_n)


# ---------------------------------------------------------------------------------------------
# Cells


class _CellBase(Module):
    _gates = 1
    _state_names: tuple = ("hx",)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        who = type(self).__name__
        self.input_size = _positive_int(who, "input_size", input_size)
        self.hidden_size = _positive_int(who, "hidden_size", hidden_size)
        self.bias = bool(bias)
        rows = self._gates * self.hidden_size
        self.weight_ih = Parameter(_memory.empty((rows, self.input_size), dtype))
        self.weight_hh = Parameter(_memory.empty((rows, self.hidden_size), dtype))
        if self.bias:
            self.bias_ih = Parameter(_memory.empty((rows,), dtype))
            self.bias_hh = Parameter(_memory.empty((rows,), dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every weight and bias from U(-1/sqrt(hidden_size),
        1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _prepare(self, input, hx):  # noqa: A002
        """(x as (1, B, input_size), states as (B, H) tensors or Nones, batched)."""
        who = type(self).__name__
        x = _float_input(input, who)
        if x.ndim not in (1, 2):
            raise ValueError(f"{who}: input must be 2-D (batch, input_size) or 1-D (input_size,)"
                             f", got shape {_shape_str(x.shape)}")
        _check_features(who, x, self.input_size)
        _same_dtype(who, x, "weight_ih", self.weight_ih)
        batched = x.ndim == 2
        if not batched:
            x = x.unsqueeze(0)
        names = self._state_names
        if hx is None:
            states = (None,) * len(names)
        elif len(names) > 1:
            if not isinstance(hx, (tuple, list)) or len(hx) != len(names):
                raise TypeError(f"{who}: hx must be a tuple ({', '.join(names)}), got "
                                f"{type(hx).__name__}")
            states = tuple(hx)
        else:
            states = (hx,)
        expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        checked = []
        for name, s in zip(names, states):
            if s is not None:
                s = _float_input(s, who, name)
                if s.shape != expected:
                    raise ValueError(f"{who}: {name} must have shape {_shape_str(expected)} "
                                     f"(batch, hidden_size) to match the input, got "
                                     f"{_shape_str(s.shape)}")
                _same_dtype(who, x, name, s)
                if not batched:
                    s = s.unsqueeze(0)
            checked.append(s)
        return x.unsqueeze(0), checked, batched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s


class RNNCell(_CellBase):
    """One step of an Elman RNN: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    ``RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh')``; ``cell(input,
    hx=None)`` with input (B, input_size) or (input_size,) and hx (B, hidden_size) (zeros when
    omitted) returns h' (B, hidden_size). Parameters ``weight_ih`` (hidden_size, input_size),
    ``weight_hh``, ``bias_ih``, ``bias_hh``, initialised from U(-1/sqrt(H), 1/sqrt(H))."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=np.float32):
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"RNNCell: nonlinearity must be one of {_NONLINEARITIES}, got "
                             f"{nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):  # noqa: A002
        x, (h,), batched = self._prepare(input, hx)
        _, h1 = rnn_layer(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, h,
                          nonlinearity=self.nonlinearity)
        return h1 if batched else h1.squeeze(0)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class LSTMCell(_CellBase):
    """One step of an LSTM (the equations of ``LSTM``).

    ``LSTMCell(input_size, hidden_size, bias=True)``; ``cell(input, (h, c)=None)`` with input
    (B, input_size) or (input_size,) and states (B, hidden_size) (zeros when omitted) returns
    ``(h', c')``. Parameters ``weight_ih`` (4 hidden_size, input_size), ``weight_hh``
    (4 hidden_size, hidden_size), ``bias_ih``, ``bias_hh``, gate order i, f, g, o, initialised
    from U(-1/sqrt(H), 1/sqrt(H))."""

    _gates = 4
    _state_names = ("h", "c")

    def forward(self, input, hx=None):  # noqa: A002
        x, (h, c), batched = self._prepare(input, hx)
        _, h1, c1 = lstm_layer(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                               h, c)
        return (h1, c1) if batched else (h1.squeeze(0), c1.squeeze(0))
