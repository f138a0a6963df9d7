"""Activations, softmax, linear, losses and dropout as functions (like ``torch.nn.functional``);
convolution and pooling (``functional_conv``), batch norm and ``dropout2d`` (``functional_norm``)
and ``embedding`` (``functional_rnn``, with the recurrent layers) are defined in their own modules
and re-exported here.

The math of every activation, softmax and loss is in ``nnx._kernels`` (the kernel seam); this
module checks arguments, reshapes, and wires the kernels into autograd. Matrix products go
through ``nnx.gemm``. Losses take ``reduction='mean' | 'sum' | 'none'``.

Differences from PyTorch: ``cross_entropy`` has no ``weight``/``ignore_index``; ``softplus`` has
fixed beta = 1 and threshold = 20; losses require input and target of the same shape instead of
broadcasting; gradients with respect to a probability target of ``cross_entropy`` are not
computed (an error says so); ``multiclass_hinge_loss`` is the Weston-Watkins loss summed over
classes, i.e. ``multi_margin_loss`` times the number of classes.
"""

from __future__ import annotations

import numpy as np

from nnx import _kernels as K
from nnx import autograd
from nnx._ops import norm_dim
from nnx._shape_ops import reshape
from nnx.autograd import Function
from nnx.linalg import gemm
from nnx.random import default_generator
from nnx.tensor import Tensor

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool1d", "avg_pool1d", "avg_pool2d", "batch_norm",
           "binary_cross_entropy_with_logits", "conv1d", "conv2d", "cross_entropy", "dropout",
           "dropout2d", "elu", "embedding", "hardsigmoid", "l1_loss", "leaky_relu", "linear",
           "log_softmax", "max_pool1d", "max_pool2d", "mse_loss", "multiclass_hinge_loss",
           "nll_loss", "one_hot", "relu", "sigmoid", "softmax", "softplus", "tanh"]

REDUCTIONS = ("mean", "sum", "none")


def _float_input(x, who: str, name: str = "input") -> Tensor:
    if isinstance(x, np.ndarray):
        x = Tensor(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{who}: {name} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{who}: {name} must be float32 or float64, got {x.dtype}")
    return x


# ---------------------------------------------------------------------------------------------
# Activations


class Activation(Function):
    @staticmethod
    def forward(ctx, x, name, alpha):
        y = K.act_forward(name, x, alpha)
        ctx.save_for_backward(x, y)
        ctx.act = name, alpha
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        name, alpha = ctx.act
        return K.act_backward(name, g, x, y, alpha), None, None


def _act(name: str, x, alpha: float = 0.0) -> Tensor:
    return Activation.apply(_float_input(x, name), name, float(alpha))


def sigmoid(input) -> Tensor:  # noqa: A002 - PyTorch's argument names throughout
    return _act("sigmoid", input)


def tanh(input) -> Tensor:  # noqa: A002
    return _act("tanh", input)


def relu(input) -> Tensor:  # noqa: A002
    return _act("relu", input)


def leaky_relu(input, negative_slope: float = 0.01) -> Tensor:  # noqa: A002
    return _act("leaky_relu", input, negative_slope)


def elu(input, alpha: float = 1.0) -> Tensor:  # noqa: A002
    return _act("elu", input, alpha)


def softplus(input) -> Tensor:  # noqa: A002
    """log(1 + e^x), with beta = 1 and the identity above x > 20."""
    return _act("softplus", input)


def hardsigmoid(input) -> Tensor:  # noqa: A002
    return _act("hardsigmoid", input)


# ---------------------------------------------------------------------------------------------
# Softmax


class Softmax(Function):
    @staticmethod
    def forward(ctx, x):
        y = K.softmax_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return K.softmax_backward(g, y)


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x):
        y = K.log_softmax_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return K.log_softmax_backward(g, y)


def _along(fn: type, x: Tensor, dim: int, who: str) -> Tensor:
    # The kernels work on the last axis; another axis is moved there and back (two copies).
    if x.ndim == 0:
        raise ValueError(f"{who}: input must have at least 1 dimension")
    d = norm_dim(dim, x.ndim)
    if d == x.ndim - 1:
        return fn.apply(x)
    return fn.apply(x.transpose(d, -1)).transpose(d, -1)


def softmax(input, dim: int = -1) -> Tensor:  # noqa: A002
    return _along(Softmax, _float_input(input, "softmax"), dim, "softmax")


def log_softmax(input, dim: int = -1) -> Tensor:  # noqa: A002
    return _along(LogSoftmax, _float_input(input, "log_softmax"), dim, "log_softmax")


# ---------------------------------------------------------------------------------------------
# Linear


class Linear(Function):
    """y = x W^T + b in one GEMM (bias, and optionally ReLU, fused into the write-back);
    backward: dX = dY W, dW = dY^T X, db = sum of dY's rows, with transposes passed to the GEMM
    (after the ReLU's mask, y > 0, is applied to dY)."""

    @staticmethod
    def forward(ctx, x, w, b, relu):
        rows = int(np.prod(x.shape[:-1], dtype=np.int64))
        x2 = x.reshape(rows, x.shape[-1])
        y = gemm(x2, w, trans_b=True, bias=b, bias_axis=None if b is None else 1, relu=relu)
        ctx.save_for_backward(x2, w, y if relu else None)
        ctx.x_shape = x.shape
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x2, w, y = ctx.saved_tensors
        nx, nw, nb, _ = ctx.needs_input_grad
        g2 = g.reshape(x2.shape[0], w.shape[0])
        if y is not None:  # the fused ReLU: y > 0 exactly where the product was kept
            g2 = K.act_backward("relu", g2, y, y)
        dx = gemm(g2, w).reshape(ctx.x_shape) if nx else None
        dw = gemm(g2, x2, trans_a=True) if nw else None
        db = g2.sum(axis=0) if nb else None
        return dx, dw, db, None


def _linear(input, weight, bias=None, relu: bool = False) -> Tensor:  # noqa: A002
    """``linear``, then with ``relu`` a ReLU fused into the same GEMM. Private because PyTorch's
    ``linear`` has no such flag; models call it where a ReLU directly follows."""
    x = _float_input(input, "linear")
    w = _float_input(weight, "linear", "weight")
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input has shape {x.shape} but weight {w.shape} expects "
                         f"{w.shape[1]} input features in the last dimension")
    if bias is not None:
        bias = _float_input(bias, "linear", "bias")
        if bias.shape != (w.shape[0],):
            raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {bias.shape}")
    for name, t in (("weight", w), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"linear: input is {x.dtype} but {name} is {t.dtype}; convert one "
                            "(e.g. with .float() or .double())")
    return Linear.apply(x, w, bias, bool(relu))


def linear(input, weight, bias=None) -> Tensor:  # noqa: A002
    """``input @ weight.T + bias`` for input (..., in_features), weight (out_features,
    in_features), bias (out_features,)."""
    return _linear(input, weight, bias)


# ---------------------------------------------------------------------------------------------
# Losses


def _check_reduction(reduction, who: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{who}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _as_target(target, who: str) -> Tensor:
    if isinstance(target, Tensor):
        return target
    if isinstance(target, (np.ndarray, list, tuple, int)):
        return Tensor(target)
    raise TypeError(f"{who}: target must be a Tensor, got {type(target).__name__}")


def _class_indices(target: Tensor, expected_shape: tuple, classes: int, who: str) -> np.ndarray:
    """The target as an int64 array of class indices, checked against the input."""
    t = target.data
    if t.dtype.kind not in "iu":
        raise TypeError(f"{who}: target must hold integer (int64) class indices, got dtype "
                        f"{t.dtype}")
    if t.shape != expected_shape:
        raise ValueError(f"{who}: target shape {t.shape} does not match input: expected "
                         f"{expected_shape} class indices")
    # Two reductions on the common (valid) path; the offending position only on failure.
    bad = np.flatnonzero((t < 0) | (t >= classes)) if t.size and (
        t.min() < 0 or t.max() >= classes) else ()
    if len(bad):
        pos = np.unravel_index(bad[0], t.shape)
        raise IndexError(f"{who}: target holds class index {t.flat[bad[0]]} at position "
                         f"{tuple(int(p) for p in pos)}, outside [0, {classes - 1}] for "
                         f"{classes} classes")
    return t.astype(np.int64, copy=False)


class CrossEntropy(Function):
    """Per-sample losses of the fused kernel, with the mean or sum taken inside the same node:
    one autograd op per loss instead of two (it shows in small-batch training steps)."""

    @staticmethod
    def forward(ctx, logits, target, label_smoothing, reduction):
        loss, probs = K.cross_entropy_forward(logits, target, label_smoothing)
        ctx.save_for_backward(probs, target)
        ctx.label_smoothing = label_smoothing
        ctx.reduction = reduction
        if reduction == "mean":  # an empty batch has no mean: NaN, as in PyTorch
            return np.asarray(loss.mean() if loss.size else np.nan, dtype=loss.dtype)
        if reduction == "sum":
            return np.asarray(loss.sum())
        return loss

    @staticmethod
    def backward(ctx, g):
        probs, target = ctx.saved_tensors
        rows = probs.shape[0]
        if ctx.reduction != "none":  # d(mean)/d(loss_i) = 1/N, d(sum)/d(loss_i) = 1
            scale = 1.0 / rows if ctx.reduction == "mean" and rows else 1.0
            g = np.full(rows, float(g) * scale, dtype=probs.dtype)
        grad = K.cross_entropy_backward(g, probs, target, ctx.label_smoothing)
        return grad, None, None, None


def cross_entropy(input, target, reduction: str = "mean",  # noqa: A002
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C) (or (N, C, d1, ...), or (C,)) against
    int64 class indices (N,) (resp. (N, d1, ...), or ()) or class probabilities of the input's
    shape. ``label_smoothing`` mixes the target with the uniform distribution."""
    who = "cross_entropy"
    x = _float_input(input, who)
    target = _as_target(target, who)
    _check_reduction(reduction, who)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{who}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if x.ndim == 0:
        raise ValueError(f"{who}: input must have a class dimension, got a 0-d tensor")
    probabilities = target.dtype.kind == "f"
    index_shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    if probabilities and target.shape == index_shape:
        raise TypeError(f"{who}: target must hold integer (int64) class indices, got dtype "
                        f"{target.dtype} (a float target holds class probabilities of the "
                        f"input's shape {x.shape})")
    if probabilities:
        if target.shape != x.shape:
            raise ValueError(f"{who}: a float target holds class probabilities and must have "
                             f"the input's shape {x.shape}, got {target.shape}; class indices "
                             "must be an integer (int64) tensor")
        if target.requires_grad and autograd.is_grad_enabled():
            raise NotImplementedError(f"{who}: no gradient with respect to the target; pass "
                                      "target.detach()")
    classes = x.shape[0] if x.ndim == 1 else x.shape[1]
    extra = x.shape[2:]
    if x.ndim == 1:
        x = x.unsqueeze(0)
        target = target.unsqueeze(0)
    elif x.ndim > 2:  # (N, C, d...) -> (N * d..., C)
        x = x.permute(0, *range(2, x.ndim), 1).reshape(-1, classes)
        if probabilities:
            target = target.permute(0, *range(2, target.ndim), 1).reshape(-1, classes)
    if probabilities:
        t = target.data.astype(x.dtype, copy=False)
    else:
        expected = index_shape if input.ndim > 1 else (1,)
        t = _class_indices(target, expected, classes, who).reshape(-1)
    loss = CrossEntropy.apply(x, t, float(label_smoothing), reduction)
    if reduction != "none":
        return loss
    if input.ndim == 1:
        return reshape(loss, ())
    return reshape(loss, (input.shape[0], *extra))


def nll_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Negative log-likelihood of log-probabilities ``input`` (N, C) at class indices (N,)."""
    x = _float_input(input, "nll_loss")
    _check_reduction(reduction, "nll_loss")
    if x.ndim != 2:
        raise ValueError(f"nll_loss: input must be (N, C) log-probabilities, got shape {x.shape}")
    t = _class_indices(_as_target(target, "nll_loss"), x.shape[:1], x.shape[1], "nll_loss")
    return _reduce(-x[np.arange(x.shape[0]), t], reduction)


class ElementwiseLoss(Function):
    @staticmethod
    def forward(ctx, x, t, name):
        t = t.astype(x.dtype, copy=False)
        ctx.save_for_backward(x, t)
        ctx.loss = name
        return K.elementwise_loss_forward(name, x, t)

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        nx, nt = ctx.needs_input_grad[:2]
        gx = K.elementwise_loss_backward(ctx.loss, g, x, t)
        gt = None
        if nt:
            # mse and l1 depend on x - t only; bce_with_logits is linear in t with slope -x.
            gt = -g * x if ctx.loss == "bce_with_logits" else -gx
        return gx if nx else None, gt, None


def _elementwise_loss(name: str, who: str, input, target, reduction) -> Tensor:  # noqa: A002
    x = _float_input(input, who)
    target = _as_target(target, who)
    _check_reduction(reduction, who)
    if target.shape != x.shape:
        raise ValueError(f"{who}: input shape {x.shape} and target shape {target.shape} differ")
    if target.dtype.kind not in "fiub":
        raise TypeError(f"{who}: target must be numeric, got {target.dtype}")
    return _reduce(ElementwiseLoss.apply(x, target, name), reduction)


def mse_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    return _elementwise_loss("mse", "mse_loss", input, target, reduction)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    return _elementwise_loss("l1", "l1_loss", input, target, reduction)


def binary_cross_entropy_with_logits(input, target,  # noqa: A002
                                     reduction: str = "mean") -> Tensor:
    """-t log s(x) - (1 - t) log(1 - s(x)) computed stably from logits x."""
    return _elementwise_loss("bce_with_logits", "binary_cross_entropy_with_logits", input,
                             target, reduction)


class MulticlassHinge(Function):
    @staticmethod
    def forward(ctx, scores, target, margin):
        ctx.save_for_backward(scores, target)
        ctx.margin = margin
        return K.multiclass_hinge_forward(scores, target, margin)

    @staticmethod
    def backward(ctx, g):
        scores, target = ctx.saved_tensors
        return K.multiclass_hinge_backward(g, scores, target, ctx.margin), None, None


def multiclass_hinge_loss(input, target, margin: float = 1.0,  # noqa: A002
                          reduction: str = "mean") -> Tensor:
    """Weston-Watkins SVM loss: per sample sum over j != y of max(0, s_j - s_y + margin); 'mean'
    averages over samples only (PyTorch's ``multi_margin_loss`` also divides by the classes)."""
    who = "multiclass_hinge_loss"
    x = _float_input(input, who)
    _check_reduction(reduction, who)
    if x.ndim != 2:
        raise ValueError(f"{who}: input must be (N, C) scores, got shape {x.shape}")
    t = _class_indices(_as_target(target, who), x.shape[:1], x.shape[1], who)
    return _reduce(MulticlassHinge.apply(x, t, float(margin)), reduction)


# ---------------------------------------------------------------------------------------------
# Dropout and helpers


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None


def dropout(input, p: float = 0.5, training: bool = True) -> Tensor:  # noqa: A002
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1 - p),
    so evaluation needs no rescaling. Identity when not training or p == 0; zeros when p == 1.
    The mask is drawn from nnx's generator."""
    x = _float_input(input, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        mask = np.zeros(x.shape, x.dtype)
    else:
        keep = default_generator().random(x.shape, dtype=np.float32) < 1.0 - p
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(x, mask)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding of integer class indices, with a new last dimension."""
    t = _as_target(tensor, "one_hot")
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got {t.dtype}")
    if num_classes < 0:
        num_classes = int(t.data.max()) + 1 if t.numel() else 0
    idx = _class_indices(t, t.shape, num_classes, "one_hot")
    out = np.zeros((*t.shape, num_classes), np.int64)
    np.put_along_axis(out, idx[..., None], 1, axis=-1)
    return Tensor._wrap(out)


# Defined in their own modules (which use the helpers above), part of this namespace as in
# torch.nn.functional.
from nnx.nn.functional_conv import (  # noqa: E402
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    max_pool1d,
    max_pool2d,
)
from nnx.nn.functional_norm import batch_norm, dropout2d  # noqa: E402
from nnx.nn.functional_rnn import embedding  # noqa: E402
