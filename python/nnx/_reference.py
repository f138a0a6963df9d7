"""Plain-numpy versions of every routine of ``nnx._kernels``: the textbook formulas.

They are the oracles that tests compare the C++ kernels against (in float64, so that they are
more accurate than the float32 kernels they check); nnx itself never calls them.

Conventions: arrays are C-contiguous float32 or float64 (``x.dtype`` decides the output dtype);
class targets are int64; "rows" means the array viewed as (N, C) with C the last axis. Functions
whose name ends in ``_step`` update their first arguments in place and return None.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------------------------
# Activations, elementwise. `alpha` is the slope of leaky_relu and the scale of elu; softplus
# uses beta = 1 and switches to the identity above x > 20 (as torch does).

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "hardsigmoid")


def act_forward(name: str, x: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    """y = f(x) for one of ACTIVATIONS."""
    if name == "sigmoid":
        # Two branches so that exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0).astype(x.dtype)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x).astype(x.dtype)
    if name == "elu":
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)
    if name == "softplus":
        return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))).astype(x.dtype)
    if name == "hardsigmoid":
        return (np.clip(x + 3, 0, 6) / 6).astype(x.dtype)
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def act_backward(name: str, grad_y: np.ndarray, x: np.ndarray, y: np.ndarray,
                 alpha: float = 0.0) -> np.ndarray:
    """grad_x = grad_y * f'(x), given both x and y = f(x) (each activation uses the cheaper)."""
    if name == "sigmoid":
        d = y * (1 - y)
    elif name == "tanh":
        d = 1 - y * y
    elif name == "relu":
        d = (x > 0)
    elif name == "leaky_relu":
        d = np.where(x > 0, 1, alpha)
    elif name == "elu":
        d = np.where(x > 0, 1, y + alpha)
    elif name == "softplus":
        e = np.exp(-np.abs(x))
        d = np.where(x > 20, 1, np.where(x >= 0, 1 / (1 + e), e / (1 + e)))
    elif name == "hardsigmoid":
        d = ((x > -3) & (x < 3)) / 6
    else:
        raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")
    return (grad_y * d).astype(x.dtype)


# ---------------------------------------------------------------------------------------------
# Softmax over the last axis, numerically stable (the row maximum is subtracted first).

def softmax_forward(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(x.dtype)


def softmax_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x = y * (grad_y - sum(grad_y * y))   (row by row)."""
    return (y * (grad_y - (grad_y * y).sum(axis=-1, keepdims=True))).astype(y.dtype)


def log_softmax_forward(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(x.dtype)


def log_softmax_backward(grad_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x = grad_y - exp(y) * sum(grad_y)   (y is the log-softmax output)."""
    return (grad_y - np.exp(y) * grad_y.sum(axis=-1, keepdims=True)).astype(y.dtype)


# ---------------------------------------------------------------------------------------------
# Losses: forward returns the loss of every sample (or element), unreduced; the autograd layer
# applies the reduction. Backward takes the gradient of those per-sample losses.

def cross_entropy_forward(logits: np.ndarray, target: np.ndarray,
                          label_smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fused log-softmax + negative log-likelihood over rows of logits (N, C).

    target: int64 class indices (N,) or a float probability table (N, C). With label smoothing
    eps, the target distribution is (1 - eps) * target + eps / C. Returns (loss (N,), probs (N, C));
    probs = softmax(logits) is what backward needs.
    """
    logp = log_softmax_forward(logits)
    n, c = logits.shape
    q = _target_distribution(target, n, c, label_smoothing, logits.dtype)
    loss = -(q * logp).sum(axis=1)
    return loss.astype(logits.dtype), np.exp(logp).astype(logits.dtype)


def cross_entropy_backward(grad_loss: np.ndarray, probs: np.ndarray, target: np.ndarray,
                           label_smoothing: float = 0.0) -> np.ndarray:
    """grad_logits[i] = grad_loss[i] * (probs[i] - q[i]) with q the (smoothed) target distribution."""
    n, c = probs.shape
    q = _target_distribution(target, n, c, label_smoothing, probs.dtype)
    return (grad_loss[:, None] * (probs - q)).astype(probs.dtype)


def _target_distribution(target, n, c, label_smoothing, dtype):
    if target.ndim == 1:
        q = np.zeros((n, c), dtype)
        q[np.arange(n), target] = 1
    else:
        q = target.astype(dtype)
    if label_smoothing:
        q = (1 - label_smoothing) * q + label_smoothing / c
    return q


ELEMENTWISE_LOSSES = ("mse", "l1", "bce_with_logits")


def elementwise_loss_forward(name: str, input: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-element loss: mse (x - t)^2, l1 |x - t|, bce_with_logits
    max(x, 0) - x t + log(1 + exp(-|x|)) (the stable form of -t log s(x) - (1 - t) log(1 - s(x)))."""
    if name == "mse":
        return ((input - target) ** 2).astype(input.dtype)
    if name == "l1":
        return np.abs(input - target).astype(input.dtype)
    if name == "bce_with_logits":
        x = input
        return (np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)
    raise ValueError(f"unknown loss {name!r}; expected one of {ELEMENTWISE_LOSSES}")


def elementwise_loss_backward(name: str, grad: np.ndarray, input: np.ndarray,
                              target: np.ndarray) -> np.ndarray:
    """Gradient with respect to input: mse 2 (x - t), l1 sign(x - t) (0 at 0), bce s(x) - t."""
    if name == "mse":
        d = 2 * (input - target)
    elif name == "l1":
        d = np.sign(input - target)
    elif name == "bce_with_logits":
        d = act_forward("sigmoid", input) - target
    else:
        raise ValueError(f"unknown loss {name!r}; expected one of {ELEMENTWISE_LOSSES}")
    return (grad * d).astype(input.dtype)


def multiclass_hinge_forward(scores: np.ndarray, target: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """Weston-Watkins SVM loss per sample: L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin)."""
    n = scores.shape[0]
    correct = scores[np.arange(n), target][:, None]
    m = np.maximum(0, scores - correct + margin)
    m[np.arange(n), target] = 0
    return m.sum(axis=1).astype(scores.dtype)


def multiclass_hinge_backward(grad_loss: np.ndarray, scores: np.ndarray, target: np.ndarray,
                              margin: float = 1.0) -> np.ndarray:
    """dL_i/ds_j = 1[s_j - s_{y_i} + margin > 0] for j != y_i; dL_i/ds_{y_i} = -(count of those)."""
    n = scores.shape[0]
    correct = scores[np.arange(n), target][:, None]
    active = (scores - correct + margin > 0).astype(scores.dtype)
    active[np.arange(n), target] = 0
    active[np.arange(n), target] = -active.sum(axis=1)
    return (grad_loss[:, None] * active).astype(scores.dtype)


# ---------------------------------------------------------------------------------------------
# Optimizer updates, in place, one parameter tensor per call (PyTorch's formulas).

def sgd_step(param: np.ndarray, grad: np.ndarray, momentum_buffer: np.ndarray | None, *, lr: float,
             momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False, first_step: bool = False) -> None:
    """g = grad + weight_decay * param; with momentum: buf = g on the first step, else
    buf = momentum * buf + (1 - dampening) * g, and g = g + momentum * buf (nesterov) or buf;
    param -= lr * g. `momentum_buffer` is required when momentum != 0."""
    g = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if first_step:
            momentum_buffer[...] = g
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * g
        g = g + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= (lr * g).astype(param.dtype)


def adam_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, *,
              step: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
              weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """Adam (Kingma & Ba) with bias correction, eps outside the square root; `step` counts from 1.
    weight_decay is L2 (added to the gradient) for Adam, decoupled (param *= 1 - lr * wd) for AdamW.
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        param -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps)"""
    g = grad
    if weight_decay and decoupled:
        param *= 1 - lr * weight_decay
    elif weight_decay:
        g = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += (1 - beta1) * g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    param -= (lr * m_hat / (np.sqrt(v_hat) + eps)).astype(param.dtype)
