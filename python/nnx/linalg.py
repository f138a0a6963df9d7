"""Matrix products on numpy arrays, computed by nnx's GEMM kernels."""

from __future__ import annotations

import numpy as np

from nnx import _core, _memory


def gemm(a, b, c=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
         bias_axis=None, relu=False):
    """``c = alpha * op(a) @ op(b) + beta * c (+ bias) (relu)``, computed in place in ``c``.

    ``op(x)`` is ``x.T`` when ``trans_x`` is true. ``a`` and ``b`` are 2-D float32 or float64
    arrays of one dtype, row- or column-contiguous (a transposed view costs nothing); ``c`` must
    be row-contiguous and is allocated when omitted (then ``beta`` must be 0). ``bias`` is added
    after the product: one value per row of ``c`` (``bias_axis=0``, length M) or per column
    (``bias_axis=1``, length N, the layout of a linear layer). ``relu`` clamps the result at 0.
    With ``beta == 0`` the old contents of ``c`` are never read. Returns ``c``.

    Unlike ``numpy.matmul``, nothing is converted: other dtypes raise ``TypeError`` and
    non-contiguous arrays raise ``ValueError``.
    """
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"gemm: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if c is None:
        if beta != 0:
            raise ValueError("gemm: beta != 0 needs an existing output c")
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"gemm: a and b must be 2-D, got shapes {a.shape} and {b.shape}")
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        c = _memory.empty((m, n), a.dtype)
    elif not isinstance(c, np.ndarray):
        raise TypeError(f"gemm: c must be a numpy.ndarray, got {type(c).__name__}")
    if bias is None:
        if bias_axis is not None:
            raise ValueError("gemm: bias_axis given without a bias")
        mode = "none"
    else:
        if bias_axis not in (0, 1):
            raise ValueError("gemm: bias_axis must be 0 (per row) or 1 (per column), "
                             f"got {bias_axis!r}")
        mode = "row" if bias_axis == 0 else "col"
    _core.gemm(a, b, c, trans_a=bool(trans_a), trans_b=bool(trans_b), alpha=float(alpha),
               beta=float(beta), bias=bias, bias_mode=mode, relu=bool(relu))
    return c


def matmul(a, b, out=None):
    """``a @ b`` for 2-D float32/float64 arrays, like ``numpy.matmul``.

    Inputs that the kernel cannot read as they are (non-contiguous slices, other float or integer
    dtypes) are converted explicitly: integers and float16 to float32, mixed float32/float64 to
    float64. ``out``, when given, must be a row-contiguous array of the result's shape and dtype.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul: a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: inner dimensions differ: a {a.shape} @ b {b.shape}")
    for x in (a, b):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"matmul: cannot multiply {a.dtype} by {b.dtype} in float32 or float64")
    dtype = np.float64 if np.float64 in (a.dtype, b.dtype) else np.float32
    a = _readable(a.astype(dtype, copy=False))
    b = _readable(b.astype(dtype, copy=False))
    return gemm(a, b, out)


def _readable(x: np.ndarray) -> np.ndarray:
    # Row- or column-contiguous (with any leading dimension) is read in place; anything else is
    # copied once here rather than rejected by the kernel.
    item = x.itemsize
    s0, s1 = x.strides
    if (s1 == item and s0 >= 0) or (s0 == item and s1 >= 0):
        return x
    return np.ascontiguousarray(x)
