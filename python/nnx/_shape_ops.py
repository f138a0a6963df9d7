"""Differentiable shape ops: reshape, transpose/permute, (un)squeeze, indexing, cat and stack.

Reshapes of C-contiguous data are views; transposes and permutes copy once (a Tensor's data is
always C-contiguous), so their backward is another permute of the gradient.
"""

from __future__ import annotations

import math

import numpy as np

from nnx._ops import norm_dim
from nnx.autograd import Function
from nnx.tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} as {shape}") \
                from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, ctx.inverse), None


class Index(Function):
    """``x[key]``; backward scatters into zeros, adding (``np.add.at``) when an integer array
    or mask may pick one element several times."""

    @staticmethod
    def forward(ctx, x, key):
        ctx.args = x.shape, x.dtype, key
        return x[key]

    @staticmethod
    def backward(ctx, g):
        shape, dtype, key = ctx.args
        gx = np.zeros(shape, dtype)
        if _is_basic(key):
            gx[key] = g
        else:
            np.add.at(gx, key, g)
        return gx, None


def _is_basic(key) -> bool:
    # Ints, slices, None and Ellipsis select each element at most once; anything else (arrays,
    # lists, bools) is numpy's advanced indexing.
    parts = key if isinstance(key, tuple) else (key,)
    return all(p is None or p is Ellipsis or isinstance(p, slice)
               or isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in parts)


class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.split = np.cumsum([x.shape[dim] for x in xs])[:-1]
        ctx.dim = dim
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        return (None, *np.split(g, ctx.split, axis=ctx.dim))


class Stack(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        return np.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        n = g.shape[ctx.dim]
        lead = (slice(None),) * ctx.dim
        return (None, *(g[(*lead, i)] for i in range(n)))


# ---------------------------------------------------------------------------------------------
# Entry points used by Tensor methods and the nnx namespace


def reshape(t: Tensor, shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = tuple(int(s) for s in shape)
    return Reshape.apply(t, shape)


def transpose(t: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(t.ndim))
    d0, d1 = norm_dim(dim0, t.ndim), norm_dim(dim1, t.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(t, tuple(dims))


def permute(t: Tensor, dims) -> Tensor:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    dims = tuple(norm_dim(d, t.ndim) for d in dims)
    if sorted(dims) != list(range(t.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {t.ndim} dimensions of a "
                         f"tensor of shape {t.shape}")
    return Permute.apply(t, dims)


def flatten(t: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if t.ndim == 0:
        return Reshape.apply(t, (1,))
    s, e = norm_dim(start_dim, t.ndim), norm_dim(end_dim, t.ndim)
    if s > e:
        raise ValueError(f"flatten: start_dim={start_dim}, end_dim={end_dim} do not fit an input "
                         f"of shape {tuple(t.shape)}: start_dim comes after end_dim")
    shape = t.shape
    return Reshape.apply(t, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def unsqueeze(t: Tensor, dim: int) -> Tensor:
    d = norm_dim(dim, t.ndim, extra=1)
    return Reshape.apply(t, t.shape[:d] + (1,) + t.shape[d:])


def squeeze(t: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        shape = tuple(n for n in t.shape if n != 1)
    else:
        d = norm_dim(dim, t.ndim)
        shape = t.shape[:d] + t.shape[d + 1:] if t.shape[d] == 1 else t.shape
    return Reshape.apply(t, shape)


def _check_tensors(tensors, who):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{who}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{who}: element {i} is a {type(t).__name__}, not a Tensor")
    return tensors


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension (all other sizes must match)."""
    tensors = _check_tensors(tensors, "cat")
    first = tensors[0]
    d = norm_dim(dim, first.ndim)
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != first.shape[:d] + \
                first.shape[d + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, which does not match "
                             f"tensor 0's {first.shape} outside dimension {d}")
    return Cat.apply(d, *tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dimension."""
    tensors = _check_tensors(tensors, "stack")
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.shape != first.shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has "
                             f"{first.shape}")
    return Stack.apply(norm_dim(dim, first.ndim, extra=1), *tensors)
