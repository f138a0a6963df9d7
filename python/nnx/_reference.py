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
    """grad_logits[i] = grad_loss[i] * (probs[i] - q[i]) with q the (smoothed) target
    distribution."""
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
    max(x, 0) - x t + log(1 + exp(-|x|)) (the stable form of
    -t log s(x) - (1 - t) log(1 - s(x)))."""
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


def multiclass_hinge_forward(scores: np.ndarray, target: np.ndarray,
                             margin: float = 1.0) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------
# Convolution (NCHW, cross-correlation as in every deep-learning library), pooling, batch norm.
# Pairs are (height, width). Output size: P = (H + 2 pad - dil (R - 1) - 1) // stride + 1.

def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _im2col(x, r, s, stride, padding, dilation):
    """(N, C, H, W) -> (N, C, R, S, P, Q): the input value under each kernel tap at each output."""
    n, c, h, w = x.shape
    p = conv_output_size(h, r, stride[0], padding[0], dilation[0])
    q = conv_output_size(w, s, stride[1], padding[1], dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    cols = np.empty((n, c, r, s, p, q), x.dtype)
    for i in range(r):
        for j in range(s):
            hi, wj = i * dilation[0], j * dilation[1]
            cols[:, :, i, j] = xp[:, :, hi:hi + stride[0] * p:stride[0],
                                  wj:wj + stride[1] * q:stride[1]]
    return cols


def conv2d_forward(x, w, b, stride=(1, 1), padding=(0, 0), dilation=(1, 1), relu=False):
    """y[n, k, p, q] = sum_{c, r, s} w[k, c, r, s] x_pad[n, c, p*sh + r*dh, q*sw + s*dw] + b[k]."""
    cols = _im2col(x, w.shape[2], w.shape[3], stride, padding, dilation)
    y = np.einsum("kcrs,ncrspq->nkpq", w, cols, optimize=True)
    if b is not None:
        y = y + b[None, :, None, None]
    if relu:
        y = np.maximum(y, 0)
    return y.astype(x.dtype)


def conv2d_backward(grad_y, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """(grad_x, grad_w, grad_b) of conv2d_forward (without relu)."""
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    cols = _im2col(x, r, s, stride, padding, dilation)
    grad_w = np.einsum("nkpq,ncrspq->kcrs", grad_y, cols, optimize=True)
    grad_b = grad_y.sum(axis=(0, 2, 3))
    dcols = np.einsum("kcrs,nkpq->ncrspq", w, grad_y, optimize=True)
    p, q = grad_y.shape[2:]
    xp = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]), np.float64)
    for i in range(r):
        for j in range(s):
            hi, wj = i * dilation[0], j * dilation[1]
            xp[:, :, hi:hi + stride[0] * p:stride[0],
               wj:wj + stride[1] * q:stride[1]] += dcols[:, :, i, j]
    grad_x = xp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]
    return grad_x.astype(x.dtype), grad_w.astype(x.dtype), grad_b.astype(x.dtype)


def _pool_windows(x, kernel, stride, padding, fill):
    n, c, h, w = x.shape
    p = conv_output_size(h, kernel[0], stride[0], padding[0])
    q = conv_output_size(w, kernel[1], stride[1], padding[1])
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=fill)
    win = np.empty((n, c, p, q, kernel[0], kernel[1]), x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            win[..., i, j] = xp[:, :, i:i + stride[0] * p:stride[0], j:j + stride[1] * q:stride[1]]
    return win


def max_pool2d_forward(x, kernel, stride, padding=(0, 0)):
    """(y, indices): the maximum of each window (padding counts as -inf) and the flat index
    h * W + w of its first occurrence in the unpadded input plane."""
    n, c, h, w = x.shape
    win = _pool_windows(x, kernel, stride, padding, -np.inf)
    flat = win.reshape(*win.shape[:4], -1)
    arg = flat.argmax(axis=-1)
    y = np.take_along_axis(flat, arg[..., None], -1)[..., 0]
    p, q = y.shape[2:]
    hi = np.arange(p)[:, None] * stride[0] - padding[0] + arg // kernel[1]
    wi = np.arange(q)[None, :] * stride[1] - padding[1] + arg % kernel[1]
    return y.astype(x.dtype), (hi * w + wi).astype(np.int64)


def max_pool2d_backward(grad_y, indices, x_shape):
    n, c, h, w = x_shape
    grad_x = np.zeros((n * c, h * w), np.float64)
    rows = np.repeat(np.arange(n * c), grad_y[0, 0].size)
    np.add.at(grad_x, (rows, indices.reshape(-1)), grad_y.reshape(-1))
    return grad_x.reshape(x_shape).astype(grad_y.dtype)


def avg_pool2d_forward(x, kernel, stride, padding=(0, 0), count_include_pad=True):
    """Mean of each window; padded positions count as zeros in the divisor when
    count_include_pad, else the divisor is the number of real input positions."""
    win = _pool_windows(x.astype(np.float64), kernel, stride, padding, 0.0)
    total = win.sum(axis=(-2, -1))
    return (total / _pool_divisor(x.shape, kernel, stride, padding,
                                  count_include_pad)).astype(x.dtype)


def _pool_divisor(x_shape, kernel, stride, padding, count_include_pad):
    if count_include_pad:
        return float(kernel[0] * kernel[1])
    ones = np.ones((1, 1) + tuple(x_shape[2:]))
    return _pool_windows(ones, kernel, stride, padding, 0.0).sum(axis=(-2, -1))[0, 0]


def avg_pool2d_backward(grad_y, x_shape, kernel, stride, padding=(0, 0), count_include_pad=True):
    n, c, h, w = x_shape
    p, q = grad_y.shape[2:]
    g = grad_y.astype(np.float64) / _pool_divisor(x_shape, kernel, stride, padding,
                                                  count_include_pad)
    xp = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            xp[:, :, i:i + stride[0] * p:stride[0], j:j + stride[1] * q:stride[1]] += g
    return xp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w].astype(grad_y.dtype)


def adaptive_avg_pool2d_forward(x, output_size):
    """Output cell (i, j) averages rows [floor(i H / P), ceil((i + 1) H / P)) and the same for
    columns, as in PyTorch."""
    n, c, h, w = x.shape
    p, q = output_size
    y = np.empty((n, c, p, q), np.float64)
    for i in range(p):
        h0, h1 = (i * h) // p, -((-(i + 1) * h) // p)
        for j in range(q):
            w0, w1 = (j * w) // q, -((-(j + 1) * w) // q)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y.astype(x.dtype)


def adaptive_avg_pool2d_backward(grad_y, x_shape):
    n, c, h, w = x_shape
    p, q = grad_y.shape[2:]
    gx = np.zeros(x_shape, np.float64)
    for i in range(p):
        h0, h1 = (i * h) // p, -((-(i + 1) * h) // p)
        for j in range(q):
            w0, w1 = (j * w) // q, -((-(j + 1) * w) // q)
            gx[:, :, h0:h1, w0:w1] += grad_y[:, :, i:i + 1, j:j + 1] / ((h1 - h0) * (w1 - w0))
    return gx.astype(grad_y.dtype)


def batch_norm_forward_train(x, gamma, beta, eps=1e-5):
    """Normalise each channel (axis 1) with the batch statistics over every other axis:
    y = gamma (x - mean) / sqrt(var + eps) + beta, var the biased variance.
    Returns (y, mean, invstd); the running statistics are updated by the caller."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes)
    var = x64.var(axis=axes)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x64 - mean.reshape(shape)) * invstd.reshape(shape)
    g = 1.0 if gamma is None else gamma.reshape(shape)
    b = 0.0 if beta is None else beta.reshape(shape)
    return (xhat * g + b).astype(x.dtype), mean.astype(x.dtype), invstd.astype(x.dtype)


def batch_norm_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    invstd = 1 / np.sqrt(running_var.astype(np.float64) + eps)
    xhat = (x - running_mean.reshape(shape)) * invstd.reshape(shape)
    g = 1.0 if gamma is None else gamma.reshape(shape)
    b = 0.0 if beta is None else beta.reshape(shape)
    return (xhat * g + b).astype(x.dtype)


def batch_norm_backward(grad_y, x, gamma, mean, invstd):
    """(grad_x, grad_gamma, grad_beta) of the training-mode forward, with m values per channel:
    grad_x = gamma invstd / m (m g - sum(g) - xhat sum(g xhat))."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    g = grad_y.astype(np.float64)
    xhat = (x.astype(np.float64) - mean.reshape(shape)) * invstd.reshape(shape)
    sum_g = g.sum(axis=axes)
    sum_gx = (g * xhat).sum(axis=axes)
    gm = 1.0 if gamma is None else gamma.reshape(shape).astype(np.float64)
    grad_x = gm * invstd.reshape(shape) / m * (m * g - sum_g.reshape(shape)
                                               - xhat * sum_gx.reshape(shape))
    return grad_x.astype(x.dtype), sum_gx.astype(x.dtype), sum_g.astype(x.dtype)


def knn_search(queries, refs, k, metric="l2"):
    """Brute force in float64: the whole (Q, R) distance matrix, then a stable sort per row, so
    that equal distances keep the smaller reference index first."""
    q = queries.astype(np.float64)
    r = refs.astype(np.float64)
    if metric == "l2":
        dist = ((q[:, None, :] - r[None, :, :]) ** 2).sum(axis=2)
    elif metric == "l1":
        dist = np.abs(q[:, None, :] - r[None, :, :]).sum(axis=2)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(dist, order, axis=1).astype(queries.dtype)


# ---------------------------------------------------------------------------------------------
# Sequence models, written step by step from the textbook equations in float64. Unlike the
# kernels, the LSTM/RNN references return no saved buffers: backward takes the forward's
# inputs (biases included) and runs the forward again, keeping every step's values, then
# accumulates the weight gradients step by step while going back in time. Layout (T, B, I),
# PyTorch's weight shapes and gate order i, f, g, o (see nnx._kernels).

def _sig(z):
    return 1 / (1 + np.exp(-z))


def _lstm_steps(x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    hid = w_hh.shape[1]
    zero = np.zeros(4 * hid)
    b = (zero if b_ih is None else b_ih.astype(np.float64)) + \
        (zero if b_hh is None else b_hh.astype(np.float64))
    w_x = [w.astype(np.float64) for w in np.split(w_ih, 4)]   # W_ii, W_if, W_ig, W_io
    w_h = [w.astype(np.float64) for w in np.split(w_hh, 4)]   # W_hi, W_hf, W_hg, W_ho
    bs = np.split(b, 4)
    h, c = h0.astype(np.float64), c0.astype(np.float64)
    steps = []
    for x_t in x.astype(np.float64):
        i = _sig(x_t @ w_x[0].T + h @ w_h[0].T + bs[0])
        f = _sig(x_t @ w_x[1].T + h @ w_h[1].T + bs[1])
        g = np.tanh(x_t @ w_x[2].T + h @ w_h[2].T + bs[2])
        o = _sig(x_t @ w_x[3].T + h @ w_h[3].T + bs[3])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append(dict(x=x_t, h_prev=h, c_prev=c, i=i, f=f, g=g, o=o, c=c_new, h=h_new))
        h, c = h_new, c_new
    return steps


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    """(y, h_n, c_n) of one LSTM layer: i = s(W_ii x + b_ii + W_hi h + b_hi), likewise f and o
    with sigmoids s, g with tanh; c' = f c + i g; h' = o tanh(c')."""
    steps = _lstm_steps(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    y = np.stack([s["h"] for s in steps])
    return y.astype(x.dtype), steps[-1]["h"].astype(x.dtype), steps[-1]["c"].astype(x.dtype)


def lstm_backward(grad_y, grad_hn, grad_cn, x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    """(grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, grad_h0, grad_c0) of lstm_forward
    for the output gradients grad_y (T, B, H), grad_hn and grad_cn (B, H) (None: zero)."""
    steps = _lstm_steps(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    hid = w_hh.shape[1]
    w_x = np.split(w_ih.astype(np.float64), 4)
    w_h = np.split(w_hh.astype(np.float64), 4)
    gw_x = [np.zeros_like(w) for w in w_x]
    gw_h = [np.zeros_like(w) for w in w_h]
    gb = [np.zeros(hid) for _ in range(4)]
    gx = np.zeros(x.shape)
    dh_next = np.zeros(h0.shape) if grad_hn is None else grad_hn.astype(np.float64)
    dc_next = np.zeros(c0.shape) if grad_cn is None else grad_cn.astype(np.float64)
    for t in reversed(range(len(steps))):
        s = steps[t]
        dh = grad_y[t] + dh_next
        tanh_c = np.tanh(s["c"])
        do = dh * tanh_c
        dc = dc_next + dh * s["o"] * (1 - tanh_c**2)
        di, df, dg = dc * s["g"], dc * s["c_prev"], dc * s["i"]
        # Through the nonlinearities to the pre-activations a_i, a_f, a_g, a_o.
        da = [di * s["i"] * (1 - s["i"]), df * s["f"] * (1 - s["f"]),
              dg * (1 - s["g"]**2), do * s["o"] * (1 - s["o"])]
        dh_next = np.zeros(h0.shape)
        gx_t = np.zeros(x.shape[1:])
        for k in range(4):
            gw_x[k] += da[k].T @ s["x"]
            gw_h[k] += da[k].T @ s["h_prev"]
            gb[k] += da[k].sum(axis=0)
            gx_t += da[k] @ w_x[k]
            dh_next += da[k] @ w_h[k]
        gx[t] = gx_t
        dc_next = dc * s["f"]
    dt = x.dtype
    b = np.concatenate(gb).astype(dt)
    return (gx.astype(dt), np.concatenate(gw_x).astype(dt), np.concatenate(gw_h).astype(dt),
            None if b_ih is None else b, None if b_hh is None else b.copy(),
            dh_next.astype(dt), dc_next.astype(dt))


def _rnn_steps(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity):
    hid = w_hh.shape[1]
    b = (np.zeros(hid) if b_ih is None else b_ih.astype(np.float64)) + \
        (np.zeros(hid) if b_hh is None else b_hh.astype(np.float64))
    h = h0.astype(np.float64)
    steps = []
    for x_t in x.astype(np.float64):
        a = x_t @ w_ih.astype(np.float64).T + h @ w_hh.astype(np.float64).T + b
        h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
        steps.append(dict(x=x_t, h_prev=h, a=a, h=h_new))
        h = h_new
    return steps


def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity="tanh"):
    """(y, h_n) of one Elman RNN layer: h' = act(W_ih x + b_ih + W_hh h + b_hh)."""
    steps = _rnn_steps(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity)
    y = np.stack([s["h"] for s in steps])
    return y.astype(x.dtype), steps[-1]["h"].astype(x.dtype)


def rnn_backward(grad_y, grad_hn, x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity="tanh"):
    """(grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, grad_h0) of rnn_forward; relu's
    derivative is taken as 0 where its argument is <= 0."""
    steps = _rnn_steps(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity)
    w_ih64, w_hh64 = w_ih.astype(np.float64), w_hh.astype(np.float64)
    gw_ih, gw_hh = np.zeros_like(w_ih64), np.zeros_like(w_hh64)
    gb = np.zeros(w_hh.shape[0])
    gx = np.zeros(x.shape)
    dh_next = np.zeros(h0.shape) if grad_hn is None else grad_hn.astype(np.float64)
    for t in reversed(range(len(steps))):
        s = steps[t]
        dh = grad_y[t] + dh_next
        da = dh * (1 - s["h"]**2) if nonlinearity == "tanh" else dh * (s["a"] > 0)
        gw_ih += da.T @ s["x"]
        gw_hh += da.T @ s["h_prev"]
        gb += da.sum(axis=0)
        gx[t] = da @ w_ih64
        dh_next = da @ w_hh64
    dt = x.dtype
    b = gb.astype(dt)
    return (gx.astype(dt), gw_ih.astype(dt), gw_hh.astype(dt), None if b_ih is None else b,
            None if b_hh is None else b.copy(), dh_next.astype(dt))


def embedding_forward(weight, indices):
    """out[p] = weight[indices[p]] for every position p of indices."""
    out = np.empty(indices.shape + weight.shape[1:], weight.dtype)
    for p in np.ndindex(indices.shape):
        out[p] = weight[indices[p]]
    return out


def embedding_backward(grad_y, indices, num_embeddings, padding_idx=None):
    """grad_w[v] = sum of grad_y[p] over the positions p with indices[p] == v (in float64);
    zero for v == padding_idx."""
    grad_w = np.zeros((num_embeddings, grad_y.shape[-1]))
    for p in np.ndindex(indices.shape):
        if indices[p] != padding_idx:
            grad_w[indices[p]] += grad_y[p]
    return grad_w.astype(grad_y.dtype)


def adaptive_max_pool1d_forward(x, output_size):
    """(y, indices): output cell j is the maximum over positions floor(j L / P) to
    ceil((j + 1) L / P) - 1 (first position on ties) of x (N, C, L)."""
    n, c, length = x.shape
    y = np.empty((n, c, output_size), x.dtype)
    idx = np.empty((n, c, output_size), np.int64)
    for a in range(n):
        for b in range(c):
            for j in range(output_size):
                lo, hi = (j * length) // output_size, -((-(j + 1) * length) // output_size)
                best = lo
                for k in range(lo + 1, hi):
                    if x[a, b, k] > x[a, b, best]:
                        best = k
                y[a, b, j], idx[a, b, j] = x[a, b, best], best
    return y, idx


def adaptive_max_pool1d_backward(grad_y, indices, x_shape):
    grad_x = np.zeros(x_shape)
    for p in np.ndindex(indices.shape):
        grad_x[p[0], p[1], indices[p]] += grad_y[p]
    return grad_x.astype(grad_y.dtype)
