"""Gradient clipping, in place on the ``.grad`` of parameters, as ``torch.nn.utils``; and the
``zero_grad`` loop shared by ``Module.zero_grad`` and ``Optimizer.zero_grad``."""

from __future__ import annotations

import math

import numpy as np

from nnx import _kernels

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list[np.ndarray]:
    if hasattr(parameters, "grad") and hasattr(parameters, "data"):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def zero_grad(parameters, set_to_none: bool = True) -> None:
    """Drops the gradient of every tensor in ``parameters`` (``grad = None``), or fills it with
    zeros when ``set_to_none=False``."""
    for p in parameters:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad.data[...] = 0


def _power_sum(g: np.ndarray, p: float) -> float:
    """sum(|g|^p), accumulated in float64."""
    if p == 2.0 and g.dtype in (np.float32, np.float64):
        return _kernels.sum_of_squares(g)
    v = np.abs(g.ravel(), dtype=np.float64)
    if p != 1.0:
        np.power(v, p, out=v)
    return float(v.sum())


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scales all gradients together so that their joint norm (the norm of the vector of every
    gradient element) is at most ``max_norm``; returns the norm before clipping.

    Unlike PyTorch, which returns a 0-d tensor, the norm is a Python float. ``norm_type`` may be
    any p >= 1 or ``inf``. A non-finite norm raises ``RuntimeError`` when
    ``error_if_nonfinite``, and otherwise leaves the gradients as they are.
    """
    norm_type = float(norm_type)
    if not (norm_type >= 1 or norm_type == math.inf):
        raise ValueError(f"clip_grad_norm_: norm_type must be >= 1 or inf, got {norm_type}")
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    grads = _grads(parameters)
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        # Per-tensor sums of |g|^p in float64 (p = 2: nnx's kernel), then the p-th root of
        # their sum: the norm over the concatenation, without concatenating. Not
        # np.linalg.norm: its BLAS call wakes numpy's BLAS threads, which then spin for a while
        # on the cores nnx's threads need (measured: a char-LSTM training step at 2 threads
        # took twice as long).
        total = sum(_power_sum(g, norm_type) for g in grads) ** (1.0 / norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                               "gradients is non-finite, so it cannot be clipped")
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= np.asarray(coef, dtype=g.dtype)
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamps every gradient element to ``[-clip_value, clip_value]``."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
