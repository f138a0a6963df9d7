"""Recurrent layers and embedding lookup as functions (``embedding`` is re-exported by
``nnx.nn.functional``).

``lstm_layer`` and ``rnn_layer`` (nnx additions; PyTorch has no public functional form) run one
layer, one direction, over a whole time-major sequence (T, B, input_size) as a single autograd
node whose forward and backward are the kernel-seam functions ``nnx._kernels.lstm_forward`` /
``lstm_backward`` and ``rnn_forward`` / ``rnn_backward``. The modules ``nnx.nn.LSTM``, ``RNN``,
``LSTMCell`` and ``RNNCell`` are built from them. Weights have PyTorch's shapes and gate order
(i, f, g, o): w_ih (G H, input_size), w_hh (G H, H), biases (G H,), with G = 4 for the LSTM and
1 for the RNN. Arguments are checked here; the kernels trust them.
"""

from __future__ import annotations

import weakref
from collections import namedtuple

import numpy as np

from nnx import _kernels as K
from nnx.autograd import Function
from nnx.nn.functional import _float_input
from nnx.tensor import Tensor

__all__ = ["embedding", "lstm_layer", "lstm_layer_embedded", "rnn_layer"]


# ---------------------------------------------------------------------------------------------
# Recurrent layers


def _needs(n, states: int) -> tuple:
    """The (input, weights, states) flags of a layer's backward from needs_input_grad n, whose
    arguments are input, w_ih, w_hh, b_ih, b_hh and `states` initial states."""
    return n[0], any(n[1:5]), any(n[5:5 + states])


def _layer_grads(n, g_input, gw_ih, gw_hh, gb, *g_states) -> tuple:
    """The gradients a layer's backward returns for those arguments: None where not needed, the
    bias gradient for both biases (they enter only as a sum)."""
    return (g_input, gw_ih if n[1] else None, gw_hh if n[2] else None, gb if n[3] else None,
            gb.copy() if n[4] else None,
            *(g if n[5 + k] else None for k, g in enumerate(g_states)))


class LSTMLayer(Function):
    """(y, h_n, c_n) of one LSTM layer over x (T, B, I); see ``nnx._kernels.lstm_forward``."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0):
        y, h_n, c_n, saved = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
        ctx.save_for_backward(x, w_ih, w_hh, *saved)
        return y, h_n, c_n

    @staticmethod
    def backward(ctx, grad_y, grad_hn, grad_cn):
        x, w_ih, w_hh, *saved = ctx.saved_tensors
        n = ctx.needs_input_grad
        return _layer_grads(n, *K.lstm_backward(grad_y, grad_hn, grad_cn, x, w_ih, w_hh,
                                                tuple(saved), _needs(n, 2)))


class RNNLayer(Function):
    """(y, h_n) of one Elman RNN layer over x (T, B, I); see ``nnx._kernels.rnn_forward``."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity):
        y, h_n, saved = K.rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity)
        ctx.save_for_backward(x, w_ih, w_hh, *saved)
        ctx.nonlinearity = nonlinearity
        return y, h_n

    @staticmethod
    def backward(ctx, grad_y, grad_hn):
        x, w_ih, w_hh, *saved = ctx.saved_tensors
        n = ctx.needs_input_grad
        grads = K.rnn_backward(grad_y, grad_hn, x, w_ih, w_hh, tuple(saved), ctx.nonlinearity,
                               _needs(n, 1))
        return (*_layer_grads(n, *grads), None)


class EmbeddedLSTMLayer(Function):
    """(y, h_n, c_n) of one LSTM layer over x = table[ids]; see
    ``nnx._kernels.lstm_forward_embedded``. The table is the differentiable input."""

    @staticmethod
    def forward(ctx, table, w_ih, w_hh, b_ih, b_hh, h0, c0, ids, padding_idx):
        y, h_n, c_n, saved = K.lstm_forward_embedded(ids, table, w_ih, w_hh, b_ih, b_hh, h0, c0)
        ctx.save_for_backward(table, w_ih, w_hh, *saved)
        ctx.ids, ctx.padding_idx = ids, padding_idx
        return y, h_n, c_n

    @staticmethod
    def backward(ctx, grad_y, grad_hn, grad_cn):
        table, w_ih, w_hh, *saved = ctx.saved_tensors
        n = ctx.needs_input_grad
        gt, *grads = K.lstm_backward_embedded(grad_y, grad_hn, grad_cn, ctx.ids, table, w_ih,
                                              w_hh, tuple(saved), _needs(n, 2))
        if gt is not None and ctx.padding_idx is not None:
            gt[ctx.padding_idx] = 0  # the padding row never receives a gradient
        return (*_layer_grads(n, gt, *grads), None, None)


def _shape_str(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _layer_args(who: str, x, w_ih, w_hh, b_ih, b_hh, states: dict, gates: int):
    """Checked (x, w_ih, w_hh, b_ih, b_hh, *states) of one recurrent layer; a missing state
    stays None (zeros, and no gradient)."""
    x = _float_input(x, who)
    return (x, *_weights_and_states(who, x.shape, x.dtype, w_ih, w_hh, b_ih, b_hh, states,
                                    gates))


def _weights_and_states(who: str, x_shape, dtype, w_ih, w_hh, b_ih, b_hh, states: dict,
                        gates: int):
    """Checked (w_ih, w_hh, b_ih, b_hh, *states) for an input of shape x_shape and dtype."""
    w_ih = _float_input(w_ih, who, "w_ih")
    w_hh = _float_input(w_hh, who, "w_hh")
    if len(x_shape) != 3:
        raise ValueError(f"{who}: input must be 3-D (seq_len, batch, input_size), got shape "
                         f"{_shape_str(x_shape)}")
    if x_shape[0] == 0:
        raise ValueError(f"{who}: input has no time steps (shape {_shape_str(x_shape)}); the "
                         "sequence length must be at least 1")
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1] or w_hh.shape[1] == 0:
        raise ValueError(f"{who}: w_hh must have shape ({gates} * hidden_size, hidden_size) with "
                         f"hidden_size >= 1, got {_shape_str(w_hh.shape)}")
    hid = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != gates * hid:
        raise ValueError(f"{who}: w_ih must have shape ({gates * hid}, input_size) to match "
                         f"w_hh {_shape_str(w_hh.shape)}, got {_shape_str(w_ih.shape)}")
    if x_shape[2] != w_ih.shape[1]:
        raise ValueError(f"{who}: input has {x_shape[2]} features in its last dimension but "
                         f"w_ih expects input_size {w_ih.shape[1]} (input shape "
                         f"{_shape_str(x_shape)})")
    biases = []
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            b = _float_input(b, who, name)
            if b.shape != (gates * hid,):
                raise ValueError(f"{who}: {name} must have shape ({gates * hid},), got "
                                 f"{_shape_str(b.shape)}")
        biases.append(b)
    out_states = []
    expected = (x_shape[1], hid)
    for name, s in states.items():
        if s is not None:  # None stays None: the kernels start from zeros
            s = _float_input(s, who, name)
            if s.shape != expected:
                raise ValueError(f"{who}: {name} must have shape (batch, hidden_size) = "
                                 f"{_shape_str(expected)}, got {_shape_str(s.shape)}")
        out_states.append(s)
    for name, t in (("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", biases[0]), ("b_hh", biases[1]),
                    *zip(states, out_states)):
        if t is not None and t.dtype != dtype:
            raise TypeError(f"{who}: input is {dtype} but {name} is {t.dtype}; convert one "
                            "(e.g. with .float() or .double())")
    return (w_ih, w_hh, *biases, *out_states)


def lstm_layer(input, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None):  # noqa: A002
    """One LSTM layer over a time-major sequence: input (T, B, I), w_ih (4H, I), w_hh (4H, H),
    b_ih and b_hh (4H,) or None, h0 and c0 (B, H) or None (zeros). Returns (output (T, B, H),
    h_n (B, H), c_n (B, H)). An nnx addition: the building block of ``nnx.nn.LSTM``."""
    args = _layer_args("lstm_layer", input, w_ih, w_hh, b_ih, b_hh, {"h0": h0, "c0": c0}, 4)
    return LSTMLayer.apply(*args)


def lstm_layer_embedded(ids, table, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None,
                        padding_idx=None):
    """``lstm_layer`` of the input ``embedding(ids, table)`` (ids int64 (T, B), table (V, I)) in
    one node: the input projection is computed for the V table rows instead of the T * B
    positions, and the backward gives the table's gradient directly (row ``padding_idx`` stays
    zero), with no (T, B, I) input in between. Same results as the two calls up to the order of
    floating-point sums. ``nnx.nn.LSTM`` uses it by itself when its input comes straight from
    ``embedding``."""
    who = "lstm_layer_embedded"
    table = _float_input(table, who, "table")
    idx = _indices(ids, table.shape[0], who)
    if idx.ndim != 2:
        raise ValueError(f"{who}: ids must be 2-D (seq_len, batch), got shape "
                         f"{_shape_str(idx.shape)}")
    args = _weights_and_states(who, idx.shape + (table.shape[1],), table.dtype, w_ih, w_hh,
                               b_ih, b_hh, {"h0": h0, "c0": c0}, 4)
    return EmbeddedLSTMLayer.apply(table, *args, idx, padding_idx)


def rnn_layer(input, w_ih, w_hh, b_ih=None, b_hh=None, h0=None,  # noqa: A002
              nonlinearity: str = "tanh"):
    """One Elman RNN layer, h' = act(x w_ih^T + b_ih + h w_hh^T + b_hh) with act ``"tanh"`` or
    ``"relu"``, over a time-major sequence: input (T, B, I), w_ih (H, I), w_hh (H, H), biases
    (H,) or None, h0 (B, H) or None (zeros). Returns (output (T, B, H), h_n (B, H)). An nnx
    addition: the building block of ``nnx.nn.RNN``."""
    if nonlinearity not in K.RNN_NONLINEARITIES:
        raise ValueError(f"rnn_layer: nonlinearity must be one of {K.RNN_NONLINEARITIES}, got "
                         f"{nonlinearity!r}")
    args = _layer_args("rnn_layer", input, w_ih, w_hh, b_ih, b_hh, {"h0": h0}, 1)
    return RNNLayer.apply(*args, nonlinearity)


# ---------------------------------------------------------------------------------------------
# Embedding


class EmbeddingLookup(Function):
    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.save_for_backward(indices)
        ctx.args = weight.shape[0], padding_idx
        return K.embedding_forward(weight, indices)

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        num_embeddings, padding_idx = ctx.args
        return K.embedding_backward(g, indices, num_embeddings, padding_idx), None, None


def _indices(input, num_embeddings: int, who: str) -> np.ndarray:  # noqa: A002
    """The indices as an int64 array, each checked to lie in [0, num_embeddings)."""
    if isinstance(input, Tensor):
        idx = input.data
    elif isinstance(input, (np.ndarray, list, tuple, int, np.integer)):
        idx = np.asarray(input)
    else:
        raise TypeError(f"{who}: input must be a Tensor of integer indices, got "
                        f"{type(input).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{who}: input must hold integer (int64) indices, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_embeddings):
        bad = np.flatnonzero((idx < 0) | (idx >= num_embeddings))[0]
        pos = tuple(int(p) for p in np.unravel_index(bad, idx.shape))
        raise IndexError(f"{who}: index {idx.flat[bad]} at position {pos} is out of range for "
                         f"{num_embeddings} embeddings (valid indices: 0 to "
                         f"{num_embeddings - 1})")
    return idx.astype(np.int64, copy=False)


def _padding_index(padding_idx, num_embeddings: int, who: str):
    """padding_idx as an index in [0, num_embeddings) (negative counts from the end), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"{who}: padding_idx must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{who}: padding_idx {padding_idx} is out of range for "
                         f"{num_embeddings} embeddings")
    return int(padding_idx) % num_embeddings


def _unsupported_embedding_options(who: str, max_norm, scale_grad_by_freq, sparse) -> None:
    if max_norm is not None:
        raise NotImplementedError(f"{who}: max_norm is not supported")
    if scale_grad_by_freq:
        raise NotImplementedError(f"{who}: scale_grad_by_freq=True is not supported")
    if sparse:
        raise NotImplementedError(f"{who}: sparse gradients are not supported (the weight "
                                  "gradient is dense)")


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,  # noqa: A002
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) at the integer indices ``input`` of
    any shape S: output (*S, embedding_dim). The weight gradient adds up the output gradients
    of repeated indices (deterministically); row ``padding_idx`` receives no gradient.
    ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` accept only their defaults."""
    who = "embedding"
    _unsupported_embedding_options(who, max_norm, scale_grad_by_freq, sparse)
    w = _float_input(weight, who, "weight")
    if w.ndim != 2:
        raise ValueError(f"{who}: weight must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{_shape_str(w.shape)}")
    idx = _indices(input, w.shape[0], who)
    pad = _padding_index(padding_idx, w.shape[0], who)
    out = EmbeddingLookup.apply(w, idx, pad)
    if isinstance(weight, Tensor):
        _lookups[id(out)] = _Lookup(weakref.ref(out, _forget(id(out))), weight, idx, pad,
                                    out._version, weight._version)
    return out


# Outputs of ``embedding`` that are still exactly table[ids] (checked by version counters), so
# that a layer consuming one can work from (table, ids) instead: ``nn.LSTM`` then runs its first
# layer as ``lstm_layer_embedded``. Keyed by id(output); an entry leaves when its output dies.
_Lookup = namedtuple("_Lookup", "output weight ids padding_idx version weight_version")
_lookups: dict = {}


def _forget(key: int):
    return lambda _ref: _lookups.pop(key, None)


def embedding_source(x):
    """(weight, ids, padding_idx) if the Tensor ``x`` is an unmodified output of ``embedding``
    whose weight is unmodified too; else None."""
    entry = _lookups.get(id(x))
    if entry is None or entry.output() is not x or x._version != entry.version \
            or entry.weight._version != entry.weight_version:
        return None
    return entry.weight, entry.ids, entry.padding_idx
