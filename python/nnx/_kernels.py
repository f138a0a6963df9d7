"""The kernel seam: every numerical routine the Python layer needs beyond the GEMM.

Autograd functions, modules and optimizers call only these functions, never numpy math of their
own. Each one hands its arrays to a C++ kernel of ``nnx._core`` (SIMD for float32, the scalar
reference for float64) after making them C-contiguous and of one dtype. ``nnx._reference`` holds
the same contracts written in plain numpy; tests compare the two.

Conventions: arrays are float32 or float64 (``x.dtype`` decides the output dtype); class targets
are int64; "rows" means the array viewed as (N, C) with C the last axis. Functions whose name
ends in ``_step`` update their first arguments in place and return None.
"""

from __future__ import annotations

import numpy as np

from nnx import _core
from nnx._reference import ACTIVATIONS, ELEMENTWISE_LOSSES  # noqa: F401  (re-exported names)


def _c(x: np.ndarray, dtype=None) -> np.ndarray:
    # Not np.ascontiguousarray: that turns a 0-d array into shape (1,). The kernels also need
    # aligned data, which a view of a byte buffer at an odd offset is not.
    y = np.asarray(x, dtype=dtype, order="C")
    return y if y.flags.aligned else y.copy()


def _opt(x, dtype):
    return None if x is None else _c(x, dtype)


def _classes(target: np.ndarray) -> np.ndarray:
    # Class indices go to the kernel as int64; probability tables keep their float dtype.
    return _c(target, np.int64) if target.ndim == 1 else target


def act_forward(name: str, x: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    """y = f(x) for one of ACTIVATIONS (alpha: leaky_relu slope, elu scale)."""
    return _core.act_forward(name, _c(x), alpha)


def act_backward(name: str, grad_y: np.ndarray, x: np.ndarray, y: np.ndarray,
                 alpha: float = 0.0) -> np.ndarray:
    """grad_x = grad_y * f'(x), given both x and y = f(x)."""
    x = _c(x)
    return _core.act_backward(name, _c(grad_y, x.dtype), x, _c(y, x.dtype), alpha)


def softmax_forward(x: np.ndarray) -> np.ndarray:
    return _core.softmax_forward(_c(x), log=False)


def softmax_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = _c(y)
    return _core.softmax_backward(_c(grad_y, y.dtype), y, log=False)


def log_softmax_forward(x: np.ndarray) -> np.ndarray:
    return _core.softmax_forward(_c(x), log=True)


def log_softmax_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = _c(y)
    return _core.softmax_backward(_c(grad_y, y.dtype), y, log=True)


def cross_entropy_forward(logits: np.ndarray, target: np.ndarray,
                          label_smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fused log-softmax + NLL over rows of logits (N, C); target: int64 indices (N,) or a float
    probability table (N, C). Returns (loss (N,), probs (N, C)); probs is what backward needs."""
    logits = _c(logits)
    target = _classes(target) if target.ndim == 1 else _c(target, logits.dtype)
    return _core.cross_entropy_forward(logits, target, label_smoothing)


def cross_entropy_backward(grad_loss: np.ndarray, probs: np.ndarray, target: np.ndarray,
                           label_smoothing: float = 0.0) -> np.ndarray:
    probs = _c(probs)
    target = _classes(target) if target.ndim == 1 else _c(target, probs.dtype)
    return _core.cross_entropy_backward(_c(grad_loss, probs.dtype), probs, target, label_smoothing)


def elementwise_loss_forward(name: str, input: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-element mse (x - t)^2, l1 |x - t| or bce_with_logits (stable form)."""
    input = _c(input)
    return _core.elementwise_loss_forward(name, input, _c(target, input.dtype))


def elementwise_loss_backward(name: str, grad: np.ndarray, input: np.ndarray,
                              target: np.ndarray) -> np.ndarray:
    input = _c(input)
    return _core.elementwise_loss_backward(name, _c(grad, input.dtype), input,
                                           _c(target, input.dtype))


def multiclass_hinge_forward(scores: np.ndarray, target: np.ndarray,
                             margin: float = 1.0) -> np.ndarray:
    """Weston-Watkins SVM loss per sample: sum_{j != y_i} max(0, s_j - s_{y_i} + margin)."""
    return _core.multiclass_hinge_forward(_c(scores), _classes(target), margin)


def multiclass_hinge_backward(grad_loss: np.ndarray, scores: np.ndarray, target: np.ndarray,
                              margin: float = 1.0) -> np.ndarray:
    scores = _c(scores)
    return _core.multiclass_hinge_backward(_c(grad_loss, scores.dtype), scores, _classes(target),
                                           margin)


def sgd_step(param: np.ndarray, grad: np.ndarray, momentum_buffer: np.ndarray | None, *, lr: float,
             momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False, first_step: bool = False) -> None:
    """One fused SGD update of `param` (and its momentum buffer) in place; see nnx/nn.h."""
    _core.sgd_step(param, _c(grad, param.dtype), momentum_buffer, lr=lr, momentum=momentum,
                   dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                   first_step=first_step)


def adam_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, *,
              step: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
              weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """One fused Adam (or AdamW, decoupled=True) update in place; `step` counts from 1."""
    _core.adam_step(param, _c(grad, param.dtype), exp_avg, exp_avg_sq, step=step, lr=lr,
                    beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                    decoupled=decoupled)


def adam_steps(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, steps: list, *,
               lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
               weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """``adam_step`` on each parameter of the lists in one call, parameter i at steps[i]."""
    # Gradients in their parameter's dtype; parameters themselves are checked by the kernel.
    _core.adam_steps(params, [_c(g, getattr(p, "dtype", None)) for p, g in zip(params, grads)],
                     exp_avgs,
                     exp_avg_sqs, steps, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                     weight_decay=weight_decay, decoupled=decoupled)


def sum_of_squares(x: np.ndarray) -> float:
    """sum(x ** 2) over every element of a float32 or float64 array, accumulated in double (a
    gradient's part of the squared norm that ``clip_grad_norm_`` needs)."""
    return _core.sum_of_squares(_c(x))


# ---------------------------------------------------------------------------------------------
# Convolution, pooling and batch norm (NCHW). Pairs are (height, width); `indices` of max
# pooling are int64 flat positions h * W + w in the input plane; batch norm works on (N, C) and
# (N, C, ...) with statistics per channel (axis 1). Every function returns new arrays.

def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv2d_forward(x, w, b, stride=(1, 1), padding=(0, 0), dilation=(1, 1), relu=False):
    """y = conv(x, w) + b (then max(y, 0) when relu): x (N, C, H, W), w (K, C, R, S), b (K,) or
    None -> y (N, K, P, Q)."""
    x = _c(x)
    return _core.conv2d_forward(x, _c(w, x.dtype), None if b is None else _c(b, x.dtype),
                                tuple(stride), tuple(padding), tuple(dilation), relu)


def conv2d_backward(grad_y, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                    needs=(True, True, True)):
    """(grad_x, grad_w, grad_b) of conv2d_forward without relu (the caller applies relu's mask
    to grad_y first); the gradients whose flag in `needs` is false come back as None."""
    x = _c(x)
    return _core.conv2d_backward(_c(grad_y, x.dtype), x, _c(w, x.dtype), tuple(stride),
                                 tuple(padding), tuple(dilation), *map(bool, needs))


def max_pool2d_forward(x, kernel, stride, padding=(0, 0)):
    """(y, indices); padding counts as -inf, ties go to the first position in the window."""
    return _core.max_pool2d_forward(_c(x), tuple(kernel), tuple(stride), tuple(padding))


def max_pool2d_backward(grad_y, indices, x_shape):
    return _core.max_pool2d_backward(_c(grad_y), _c(indices, np.int64), tuple(x_shape))


def avg_pool2d_forward(x, kernel, stride, padding=(0, 0), count_include_pad=True):
    return _core.avg_pool2d_forward(_c(x), tuple(kernel), tuple(stride), tuple(padding),
                                    count_include_pad)


def avg_pool2d_backward(grad_y, x_shape, kernel, stride, padding=(0, 0), count_include_pad=True):
    return _core.avg_pool2d_backward(_c(grad_y), tuple(x_shape), tuple(kernel), tuple(stride),
                                     tuple(padding), count_include_pad)


def adaptive_avg_pool2d_forward(x, output_size):
    return _core.adaptive_avg_pool2d_forward(_c(x), tuple(output_size))


def adaptive_avg_pool2d_backward(grad_y, x_shape):
    return _core.adaptive_avg_pool2d_backward(_c(grad_y), tuple(x_shape))


def batch_norm_forward_train(x, gamma, beta, eps=1e-5):
    """(y, mean, invstd) with batch statistics (biased variance); gamma/beta may be None."""
    x = _c(x)
    return _core.batch_norm_forward_train(x, _opt(gamma, x.dtype), _opt(beta, x.dtype), eps)


def batch_norm_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    x = _c(x)
    return _core.batch_norm_forward_eval(x, _c(running_mean, x.dtype), _c(running_var, x.dtype),
                                         _opt(gamma, x.dtype), _opt(beta, x.dtype), eps)


def batch_norm_backward(grad_y, x, gamma, mean, invstd):
    """(grad_x, grad_gamma, grad_beta) of the training-mode forward."""
    x = _c(x)
    return _core.batch_norm_backward(_c(grad_y, x.dtype), x, _opt(gamma, x.dtype),
                                     _c(mean, x.dtype), _c(invstd, x.dtype))


def knn_search(queries, refs, k, metric="l2"):
    """(indices, distances), each (Q, k): for every query row, its k nearest reference rows.

    ``metric`` is "l2" (squared Euclidean distance, through the GEMM identity
    |a - b|^2 = |a|^2 + |b|^2 - 2 a.b) or "l1" (sum of absolute differences). Rows of the result
    are sorted by distance; equal distances are ordered by the smaller reference index. Indices
    are int64, distances have the dtype of ``queries``. The (Q, R) distance matrix is computed in
    blocks and never exists whole.
    """
    queries = _c(queries)
    return _core.knn_search(queries, _c(refs, queries.dtype), int(k), metric)


# ---------------------------------------------------------------------------------------------
# Sequence models: LSTM and vanilla RNN layers over a whole sequence (csrc/runtime/rnn.cpp),
# embedding lookup and adaptive max pooling over time.
#
# Every function accepts float32 or float64 (the dtype of ``x``, resp. ``weight``, decides;
# other float arrays are converted) and returns new C-contiguous arrays. Shapes are checked by
# ``_core``; the callers in ``nnx.nn`` (``functional_rnn``) check them first with messages in
# terms of the modules.
#
# Layout: time-major. x is (T, B, I) with T >= 1 time steps, B >= 0 sequences, I input
# features; hidden and cell states are (B, H). Weights have PyTorch's shapes and gate order, so
# that state dicts interoperate: LSTM w_ih (4H, I), w_hh (4H, H), b_ih and b_hh (4H,), the four
# row blocks of H being the gates i (input), f (forget), g (cell candidate), o (output);
# RNN w_ih (H, I), w_hh (H, H), b_ih and b_hh (H,). Either bias may be None (no bias).

from nnx import _memory  # noqa: E402

RNN_NONLINEARITIES = ("tanh", "relu")


def _optional(a, dtype):
    return None if a is None else _c(a, dtype)


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    """One LSTM layer over a whole sequence: ``(y, h_n, c_n, saved)``.

    Inputs: x (T, B, I); w_ih (4H, I); w_hh (4H, H); b_ih, b_hh (4H,) or None; h0, c0 (B, H)
    or None (zeros). For t = 1..T, with gate order i, f, g, o in the rows of the weights:

        z_t = x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh              (B, 4H)
        i = sigmoid(z_t[:, 0:H])     f = sigmoid(z_t[:, H:2H])
        g = tanh(z_t[:, 2H:3H])      o = sigmoid(z_t[:, 3H:4H])
        c_t = f * c_{t-1} + i * g    h_t = o * tanh(c_t)

    Outputs: y (T, B, H) with y[t - 1] = h_t; h_n = h_T and c_n = c_T (B, H), separate arrays.
    ``saved`` is a tuple holding one opaque 1-D array (the activated gates, hidden and cell
    states of every step) that ``lstm_backward`` needs. Structure: one GEMM for the input
    projections of all steps, then per step one recurrent GEMM and the fused gate kernel.
    """
    x = _c(x)
    dt = x.dtype
    y, h_n, c_n, saved = _core.lstm_forward(x, _c(w_ih, dt), _c(w_hh, dt), _optional(b_ih, dt),
                                            _optional(b_hh, dt), _optional(h0, dt),
                                            _optional(c0, dt))
    return y, h_n, c_n, (saved,)


def lstm_backward(grad_y, grad_hn, grad_cn, x, w_ih, w_hh, saved, needs=(True, True, True)):
    """Backpropagation through time of ``lstm_forward``:
    ``(grad_x, grad_w_ih, grad_w_hh, grad_b, grad_h0, grad_c0)``.

    grad_y (T, B, H) is the gradient of y; grad_hn and grad_cn (B, H) those of h_n and c_n, or
    None for zero. x, w_ih, w_hh are the forward's inputs, ``saved`` its last output.
    grad_b (4H,) is the gradient of b_ih and equally of b_hh (they enter only as a sum).
    ``needs`` = (input, weights, states) flags: grad_x; grad_w_ih, grad_w_hh and grad_b; grad_h0
    and grad_c0 come back as None when their flag is false. Structure: one backward step per
    time step from T down to 1 (the recurrent GEMM for the gradient reaching h_t, then the
    fused gate kernel), then the weight gradients as whole-sequence GEMMs over all T * B rows
    and grad_x = dz w_ih as one GEMM. With dh = grad_y[t] + (gradient from step t + 1) and dc
    likewise:

        dc += dh * o * (1 - tanh(c_t)^2)
        dz_i = dc * g * i (1 - i)      dz_f = dc * c_{t-1} * f (1 - f)
        dz_g = dc * i * (1 - g^2)      dz_o = dh * tanh(c_t) * o (1 - o)
        gradient to c_{t-1}: dc * f    gradient to h_{t-1}: dz_t w_hh
    """
    x = _c(x)
    dt = x.dtype
    return _core.lstm_backward(_c(grad_y, dt), _optional(grad_hn, dt), _optional(grad_cn, dt), x,
                               _c(w_ih, dt), _c(w_hh, dt), _c(saved[0], dt), *map(bool, needs))


def lstm_forward_embedded(ids, table, w_ih, w_hh, b_ih, b_hh, h0, c0):
    """``lstm_forward`` of the input x = table[ids] (ids int64 (T, B) in [0, V), table (V, I)),
    without forming x: the input projection W_ih x + b is computed for the V table rows and each
    step gathers its columns. Returns ``(y, h_n, c_n, saved)`` like ``lstm_forward``."""
    table = _c(table)
    dt = table.dtype
    y, h_n, c_n, saved = _core.lstm_forward_embedded(
        _c(ids, np.int64), table, _c(w_ih, dt), _c(w_hh, dt), _optional(b_ih, dt),
        _optional(b_hh, dt), _optional(h0, dt), _optional(c0, dt))
    return y, h_n, c_n, (saved,)


def lstm_backward_embedded(grad_y, grad_hn, grad_cn, ids, table, w_ih, w_hh, saved,
                           needs=(True, True, True)):
    """Backpropagation through time of ``lstm_forward_embedded``: ``(grad_table, grad_w_ih,
    grad_w_hh, grad_b, grad_h0, grad_c0)``, where grad_table (V, I) is the gradient of the
    table through x = table[ids] (the column gradients of the projection, summed by id, times
    W_ih); ``needs`` = (table, weights, states) as for ``lstm_backward``."""
    table = _c(table)
    dt = table.dtype
    return _core.lstm_backward_embedded(_c(grad_y, dt), _optional(grad_hn, dt),
                                        _optional(grad_cn, dt), _c(ids, np.int64), table,
                                        _c(w_ih, dt), _c(w_hh, dt), _c(saved[0], dt),
                                        *map(bool, needs))


def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity="tanh"):
    """One Elman RNN layer over a whole sequence: ``(y, h_n, saved)``.

    Inputs: x (T, B, I); w_ih (H, I); w_hh (H, H); b_ih, b_hh (H,) or None; h0 (B, H) or None;
    nonlinearity "tanh" or "relu". For t = 1..T:

        h_t = act(x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh)

    Outputs: y (T, B, H) with y[t - 1] = h_t; h_n = h_T (B, H), a separate array; ``saved`` a
    tuple with one opaque array (every step's hidden state) for ``rnn_backward``.
    """
    x = _c(x)
    dt = x.dtype
    y, h_n, saved = _core.rnn_forward(x, _c(w_ih, dt), _c(w_hh, dt), _optional(b_ih, dt),
                                      _optional(b_hh, dt), _optional(h0, dt), nonlinearity)
    return y, h_n, (saved,)


def rnn_backward(grad_y, grad_hn, x, w_ih, w_hh, saved, nonlinearity="tanh",
                 needs=(True, True, True)):
    """Backpropagation through time of ``rnn_forward``:
    ``(grad_x, grad_w_ih, grad_w_hh, grad_b, grad_h0)``.

    grad_y (T, B, H); grad_hn (B, H) or None for zero; x, w_ih, w_hh the forward's inputs,
    ``saved`` its last output. grad_b (H,) is the gradient of b_ih and equally of b_hh.
    ``needs`` = (input, weights, states) as for ``lstm_backward``. Per step from T down to 1:
    dz_t = (grad_y[t] + dz_{t+1} w_hh) * act'(h_t), with relu'(h) = 1 where h > 0, else 0;
    then the weight gradients as whole-sequence GEMMs after the loop, and grad_x = dz w_ih.
    """
    x = _c(x)
    dt = x.dtype
    return _core.rnn_backward(_c(grad_y, dt), _optional(grad_hn, dt), x, _c(w_ih, dt),
                              _c(w_hh, dt), _c(saved[0], dt), nonlinearity, *map(bool, needs))


def embedding_forward(weight, indices):
    """Rows of ``weight`` (V, D) at int64 ``indices`` of any shape S: (*S, D). Indices lie in
    [0, V) (IndexError otherwise)."""
    return _core.embedding_forward(_c(weight), _c(indices, np.int64))


def embedding_backward(grad_y, indices, num_embeddings, padding_idx=None):
    """The gradient of ``embedding_forward`` with respect to the weight: (V, D) zeros plus,
    for every position p of ``indices``, the row grad_y[p] added to row indices[p] (a
    scatter-add: a repeated index receives the sum of its rows). Deterministic: each row's
    contributions are summed in increasing position order (row-major over ``indices``), so the
    result is bitwise reproducible, whatever the number of threads. Row ``padding_idx`` (an int
    in [0, V), or None) is left at zero."""
    return _core.embedding_backward(_c(grad_y), _c(indices, np.int64), int(num_embeddings),
                                    padding_idx)


def adaptive_max_pool1d_forward(x, output_size):
    """Max pooling of x (N, C, L) to (N, C, P), P = ``output_size`` >= 1, L >= 1: output cell j
    takes the maximum over positions floor(j L / P) to ceil((j + 1) L / P) - 1, the windows of
    ``adaptive_avg_pool2d``. Returns (y, indices): indices (N, C, P) int64, the position along L
    of each maximum, the first one on ties. P = 1 is max-over-time pooling."""
    x = _c(x)
    n, c, length = x.shape
    y = _memory.empty((n, c, output_size), x.dtype)
    indices = np.empty((n, c, output_size), np.int64)
    for j in range(output_size if n * c else 0):  # an empty batch has no windows to scan
        lo, hi = (j * length) // output_size, -((-(j + 1) * length) // output_size)
        arg = np.argmax(x[:, :, lo:hi], axis=2)
        indices[:, :, j] = arg + lo
        y[:, :, j] = np.take_along_axis(x[:, :, lo:hi], arg[:, :, None], axis=2)[:, :, 0]
    return y, indices


def adaptive_max_pool1d_backward(grad_y, indices, x_shape):
    """(N, C, L) zeros with grad_y added at the positions in ``indices`` (overlapping windows
    that pick the same position add up)."""
    n, c, length = x_shape
    p = grad_y.shape[2]
    grad_x = _core.max_pool2d_backward(_c(grad_y).reshape(n, c, 1, p),
                                       _c(indices, np.int64).reshape(n, c, 1, p),
                                       (n, c, 1, length))
    return grad_x.reshape(n, c, length)
