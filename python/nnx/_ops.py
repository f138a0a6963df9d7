"""Differentiable arithmetic, elementwise maths, reductions and matmul, as autograd Functions.

Each Function works on numpy arrays (see ``nnx.autograd``); the Tensor operators and methods in
``nnx.tensor`` are thin calls into these. Binary ops broadcast like numpy, and their backward
sums each gradient back to its input's shape (``sum_to``).
"""

from __future__ import annotations

import numpy as np

from nnx.autograd import Function
from nnx.linalg import gemm
from nnx.linalg import matmul as _array_matmul
from nnx.tensor import Tensor

# ---------------------------------------------------------------------------------------------
# Helpers


def sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Reduce a broadcast gradient ``g`` back to ``shape`` by summing the broadcast axes."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _default_float(out, *inputs):
    # numpy turns integer / integer, or integer * Python float, into float64; like PyTorch, a
    # result is float64 only when an input array already was.
    if out.dtype == np.float64 and not any(
            isinstance(x, np.ndarray) and x.dtype == np.float64 for x in inputs):
        return out.astype(np.float32)
    return out


_ndarray = np.ndarray
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def _weak_zero_dim(a, b):
    """``(a, b)`` with a 0-d array cast to the dtype of the other operand when that one has
    dimensions and the same category (bool, integer, floating), as in PyTorch: a float32 vector
    times a float64 0-d tensor stays float32, where numpy 2 would give float64. A 0-d operand of
    a higher category (an integer vector times a float 0-d) still promotes. Python scalars are
    weak in numpy already."""
    if a.__class__ is not _ndarray or b.__class__ is not _ndarray or a.dtype == b.dtype:
        return a, b
    if a.ndim == 0 and b.ndim:
        if _CATEGORY.get(a.dtype.kind) == _CATEGORY.get(b.dtype.kind):
            a = a.astype(b.dtype)
    elif b.ndim == 0 and a.ndim:
        if _CATEGORY.get(a.dtype.kind) == _CATEGORY.get(b.dtype.kind):
            b = b.astype(a.dtype)
    return a, b


def _shape(x) -> tuple:
    return x.shape if isinstance(x, np.ndarray) else ()


def norm_dim(dim: int, ndim: int, extra: int = 0) -> int:
    """``dim`` as a non-negative axis of a tensor with ``ndim`` (+ ``extra`` new) axes."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    n = max(ndim + extra, 1)
    if not -n <= dim < n:
        raise IndexError(f"dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % n


def norm_dims(dim, ndim: int):
    """None (all axes) or a tuple of distinct non-negative axes."""
    if dim is None:
        return None
    dims = tuple(norm_dim(d, ndim) for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
    if len(set(dims)) != len(dims):
        raise ValueError(f"dim {dim} repeats an axis")
    return dims


def index_key(index):
    """An indexing key with Tensors replaced by their arrays (numpy then indexes as usual)."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


# ---------------------------------------------------------------------------------------------
# Arithmetic


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        a, b = _weak_zero_dim(a, b)
        ctx.shapes = _shape(a), _shape(b)
        return _default_float(np.add(a, b), a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return sum_to(g, sa) if na else None, sum_to(g, sb) if nb else None


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        a, b = _weak_zero_dim(a, b)
        ctx.shapes = _shape(a), _shape(b)
        return _default_float(np.subtract(a, b), a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return sum_to(g, sa) if na else None, -sum_to(g, sb) if nb else None


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        a, b = _weak_zero_dim(a, b)
        ctx.save_for_backward(a, b)
        return _default_float(np.multiply(a, b), a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (sum_to(g * b, _shape(a)) if na else None,
                sum_to(g * a, _shape(b)) if nb else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        a, b = _weak_zero_dim(a, b)
        out = _default_float(np.true_divide(a, b), a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = sum_to(g / b, _shape(a)) if na else None
        gb = sum_to(-g * out / b, _shape(b)) if nb else None
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        a, b = _weak_zero_dim(a, b)
        out = _default_float(np.power(a, b), a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if na:
            ga = sum_to(g * b * np.power(a, b - 1), _shape(a))
        if nb:
            # d(a^b)/db = a^b log a; 0 where a == 0 (the limit for b > 0, PyTorch's convention).
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = np.where(np.equal(a, 0), 0, g * out * np.log(a))
            gb = sum_to(gb, _shape(b))
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return np.negative(x)

    @staticmethod
    def backward(ctx, g):
        return -g


# ---------------------------------------------------------------------------------------------
# Elementwise maths


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = _default_float(np.exp(x), x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _default_float(np.log(x), x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        out = _default_float(np.sqrt(x), x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * out)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * np.sign(x)


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.bounds = lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        # The gradient passes where the input lies within [lo, hi], bounds included.
        inside = np.ones(x.shape, bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return g * inside, None, None


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        a, b = _weak_zero_dim(a, b)
        ctx.save_for_backward(cond)
        ctx.shapes = _shape(a), _shape(b)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        _, na, nb = ctx.needs_input_grad
        return (None, sum_to(np.where(cond, g, 0), sa) if na else None,
                sum_to(np.where(cond, 0, g), sb) if nb else None)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g, None  # the engine casts it back to the input's dtype


# ---------------------------------------------------------------------------------------------
# Reductions


def _expand_back(g, shape, dims, keepdim):
    if not keepdim:
        g = np.expand_dims(g, dims if dims is not None else tuple(range(len(shape))))
    return np.broadcast_to(g, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.args = x.shape, dims, keepdim
        return np.sum(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return _expand_back(g, *ctx.args), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.args = x.shape, dims, keepdim
        count = x.size if dims is None else int(np.prod([x.shape[d] for d in dims]))
        ctx.count = count
        return np.mean(x, axis=dims, keepdims=keepdim,
                       dtype=None if x.dtype.kind == "f" else np.float32)

    @staticmethod
    def backward(ctx, g):
        return _expand_back(g / ctx.count, *ctx.args), None, None


class Extreme(Function):
    """max()/min() over all elements; ties share the gradient equally (as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, fn):
        if x.size == 0:
            raise ValueError(f"{fn.__name__}: empty tensor of shape {x.shape}")
        out = fn(x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        hit = x == out
        return g * hit / np.count_nonzero(hit), None


class ExtremeDim(Function):
    """max(dim)/min(dim): (values, int64 indices); the gradient goes to the returned index."""

    @staticmethod
    def forward(ctx, x, argfn, dim, keepdim):
        if x.size == 0:
            raise ValueError(f"max/min: empty tensor of shape {x.shape}")
        idx = argfn(x, axis=dim, keepdims=True)
        values = np.take_along_axis(x, idx, axis=dim)
        ctx.args = x.shape, x.dtype, idx, dim
        if not keepdim:
            values, idx = values.squeeze(dim), idx.squeeze(dim)
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx, g, _g_indices):
        shape, dtype, idx, dim = ctx.args
        gx = np.zeros(shape, dtype)
        np.put_along_axis(gx, idx, g.reshape(idx.shape), axis=dim)
        return gx, None, None, None


def arg_extreme(t, fn, dim, keepdim):
    """argmax/argmin: int64 indices, no gradient. Without ``dim``, an index into the flattened
    tensor."""
    if dim is None:
        out = np.asarray(fn(t.data), dtype=np.int64)
        if keepdim:
            out = out.reshape((1,) * t.ndim)
    else:
        out = fn(t.data, axis=norm_dim(dim, t.ndim), keepdims=keepdim).astype(np.int64)
    return Tensor._wrap(np.ascontiguousarray(out) if out.ndim else out)


# ---------------------------------------------------------------------------------------------
# Matrix products


class MatMul2d(Function):
    """Products of 1-D/2-D float tensors, on nnx's GEMM; backward passes transposes to the GEMM
    instead of copying: dA = dC @ B^T, dB = A^T @ dC."""

    @staticmethod
    def forward(ctx, a, b):
        dtype = np.result_type(a, b)
        a2 = (a.reshape(1, -1) if a.ndim == 1 else a).astype(dtype, copy=False)
        b2 = (b.reshape(-1, 1) if b.ndim == 1 else b).astype(dtype, copy=False)
        ctx.save_for_backward(a2, b2)
        ctx.shapes = a.shape, b.shape
        out = gemm(a2, b2)
        return out.reshape(a.shape[:-1] + b.shape[1:])

    @staticmethod
    def backward(ctx, g):
        a2, b2 = ctx.saved_tensors
        sa, sb = ctx.shapes
        g2 = g.reshape(a2.shape[0], b2.shape[1])
        na, nb = ctx.needs_input_grad
        ga = gemm(g2, b2, trans_b=True).reshape(sa) if na else None
        gb = gemm(a2, g2, trans_a=True).reshape(sb) if nb else None
        return ga, gb


class MatMulBatched(Function):
    """Products with batch dimensions (broadcast as in numpy.matmul), or of integer tensors."""

    @staticmethod
    def forward(ctx, a, b):
        a1 = a[None, :] if a.ndim == 1 else a
        b1 = b[:, None] if b.ndim == 1 else b
        ctx.save_for_backward(a1, b1)
        ctx.shapes = a.shape, b.shape
        out = np.matmul(a1, b1)
        if a.ndim == 1:
            out = out.squeeze(-2)
        if b.ndim == 1:
            out = out.squeeze(-1)
        return out

    @staticmethod
    def backward(ctx, g):
        a1, b1 = ctx.saved_tensors
        sa, sb = ctx.shapes
        if len(sa) == 1:
            g = np.expand_dims(g, -2)
        if len(sb) == 1:
            g = np.expand_dims(g, -1)
        na, nb = ctx.needs_input_grad
        ga = sum_to(np.matmul(g, np.swapaxes(b1, -1, -2)), a1.shape).reshape(sa) if na else None
        gb = sum_to(np.matmul(np.swapaxes(a1, -1, -2), g), b1.shape).reshape(sb) if nb else None
        return ga, gb


def matmul(a, b):
    """``a @ b`` with numpy.matmul's rules for 1-D and batched operands."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be tensors or arrays, not scalars")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands need at least 1 dimension, got shapes {a.shape} and "
                         f"{b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape}")
    if a.ndim <= 2 and b.ndim <= 2 and a.dtype.kind == "f" and b.dtype.kind == "f":
        return MatMul2d.apply(a, b)
    return MatMulBatched.apply(a, b)


def where(condition, input, other):  # noqa: A002 - PyTorch's names
    """Elementwise ``input if condition else other`` (broadcast), differentiable in both."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be bool, got {cond.dtype}")
    input = input if isinstance(input, Tensor) else Tensor(input)
    other = other if isinstance(other, Tensor) else Tensor(other)
    return Where.apply(cond, input, other)


def matmul_any(a, b, out=None):
    """``nnx.matmul``: differentiable for Tensors; plain numpy arrays go to
    ``nnx.linalg.matmul`` (which converts explicitly and accepts ``out``)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        if out is not None:
            raise TypeError("matmul: out= is only supported for numpy arrays")
        return matmul(a if isinstance(a, Tensor) else Tensor(a),
                      b if isinstance(b, Tensor) else Tensor(b))
    return _array_matmul(a, b, out)
