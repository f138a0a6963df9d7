"""Test helpers: finite-difference gradient checks for autograd Functions."""

from __future__ import annotations

import numpy as np

from nnx import autograd
from nnx.tensor import Tensor

__all__ = ["GradcheckError", "gradcheck"]

# Up to this many output elements the whole Jacobian is compared (one backward per output
# element); above it, a random projection v . f(x) is, which catches any wrong Jacobian except
# one whose error happens to be orthogonal to v.
_FULL_JACOBIAN_MAX_OUTPUTS = 16


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree."""


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, seed: int = 0) -> bool:
    """Compare the gradients autograd computes for ``fn(*inputs)`` with central differences.

    ``inputs`` is a Tensor or a sequence; the float64 tensors among them that require grad are
    checked (float32 is too coarse for finite differences and is rejected), the others are passed
    through. ``fn`` returns a Tensor or a tuple of Tensors. Each element must satisfy
    ``|analytic - numerical| <= atol + rtol * |numerical|``. Returns True, or raises
    ``GradcheckError`` naming the input, the element and both values (or returns False when
    ``raise_exception`` is False).
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 inputs")
        if not inputs[i].is_leaf:
            raise ValueError(f"gradcheck: input {i} is not a leaf; pass detached tensors")

    outputs = _outputs(fn, inputs)
    total = sum(o.numel() for o in outputs)
    if total <= _FULL_JACOBIAN_MAX_OUTPUTS:
        projections = np.eye(total)
        names = [f"output {k} element {_pos(o.shape, j)}"
                 for k, o in enumerate(outputs) for j in range(o.numel())]
    else:
        projections = np.random.default_rng(seed).standard_normal((total, 1))
        names = ["a random projection of the outputs"]

    numerical = {i: _numerical(fn, inputs, inputs[i].data, projections, eps) for i in checked}
    for p, what in enumerate(names):
        analytic = _analytic(fn, inputs, checked, _split(projections[:, p], outputs))
        for i in checked:
            num = numerical[i][:, p].reshape(inputs[i].shape)
            err = np.abs(analytic[i] - num)
            bad = err > atol + rtol * np.abs(num)
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                msg = (f"gradcheck: gradient of {what} with respect to input {i}, element "
                       f"{_pos(inputs[i].shape, j)}: analytic {analytic[i].flat[j]:.10g} vs "
                       f"numerical {num.flat[j]:.10g} (atol {atol}, rtol {rtol}; "
                       f"{int(bad.sum())} of {bad.size} elements differ)")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def _split(v: np.ndarray, outputs) -> list:
    parts, start = [], 0
    for o in outputs:
        parts.append(v[start:start + o.numel()].reshape(o.shape))
        start += o.numel()
    return parts


def _outputs(fn, inputs) -> list:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: output {k} is a {type(o).__name__}, not a Tensor")
    return [o for o in outs if o.dtype.kind == "f"]


def _analytic(fn, inputs, checked, vs) -> dict:
    outs = _outputs(fn, inputs)
    pairs = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    if not pairs:
        return {i: np.zeros(inputs[i].shape) for i in checked}
    grads = autograd.grad([o for o, _ in pairs], [inputs[i] for i in checked],
                          [v for _, v in pairs], allow_unused=True)
    return {i: (np.zeros(inputs[i].shape) if g is None else g.data)
            for i, g in zip(checked, grads)}


def _numerical(fn, inputs, x: np.ndarray, projections: np.ndarray, eps: float) -> np.ndarray:
    # Central differences of the projected outputs, (x.size, projections), perturbing x's array
    # in place and restoring it exactly.
    out = np.zeros((x.size, projections.shape[1]))
    flat = x.reshape(-1)
    with autograd.no_grad():
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = _flat_outputs(fn, inputs)
            flat[j] = orig - eps
            minus = _flat_outputs(fn, inputs)
            flat[j] = orig
            out[j] = (plus - minus) @ projections / (2 * eps)
    return out


def _flat_outputs(fn, inputs) -> np.ndarray:
    outs = _outputs(fn, inputs)
    return np.concatenate([o.data.reshape(-1).astype(np.float64) for o in outs]) if outs \
        else np.zeros(0)


def _pos(shape: tuple, flat_index: int):
    return tuple(int(p) for p in np.unravel_index(flat_index, shape)) if shape else ()
