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
    # Not np.ascontiguousarray: that turns a 0-d array into shape (1,).
    return np.asarray(x, dtype=dtype, order="C")


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
