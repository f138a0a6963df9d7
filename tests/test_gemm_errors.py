"""Bad input to the GEMM raises a clear exception naming the argument, and never crashes."""

import numpy as np
import pytest

import nnx
from nnx import _core

f32 = np.float32


def test_inner_dimension_mismatch():
    with pytest.raises(ValueError, match=r"inner dimensions differ: a \(3, 4\), b \(5, 2\)"):
        nnx.gemm(np.ones((3, 4), f32), np.ones((5, 2), f32))


def test_wrong_ndim():
    with pytest.raises(ValueError, match="a must be 2-D, got shape \\(3,\\)"):
        _core.gemm(np.ones(3, f32), np.ones((3, 2), f32), np.ones((1, 2), f32))
    with pytest.raises(ValueError, match="2-D"):
        nnx.matmul(np.ones((2, 3, 4), f32), np.ones((4, 2), f32))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.float16, np.complex64, object])
def test_non_float_dtypes_rejected(dtype):
    with pytest.raises(TypeError, match="a must be float32 or float64"):
        nnx.gemm(np.ones((2, 2), dtype), np.ones((2, 2), f32), np.ones((2, 2), f32))


def test_mixed_dtypes_rejected():
    with pytest.raises(TypeError, match="share one dtype"):
        nnx.gemm(np.ones((2, 2), f32), np.ones((2, 2), np.float64), np.ones((2, 2), f32))


def test_non_contiguous_rejected_by_gemm():
    x = np.ones((4, 8), f32)[:, ::2]
    with pytest.raises(ValueError, match=r"a with shape \(4, 4\) and strides \(32, 8\) is not"):
        nnx.gemm(x, np.ones((4, 4), f32))
    with pytest.raises(ValueError, match="strides"):
        nnx.gemm(np.ones((4, 4), f32)[::-1], np.ones((4, 4), f32))


def test_output_checks():
    a, b = np.ones((3, 4), f32), np.ones((4, 5), f32)
    with pytest.raises(ValueError, match=r"c has shape \(3, 4\) but the product is \(3, 5\)"):
        nnx.gemm(a, b, np.empty((3, 4), f32))
    with pytest.raises(ValueError, match="c with shape .* is not row-contiguous"):
        nnx.gemm(a, b, np.empty((5, 3), f32).T)
    ro = np.empty((3, 5), f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nnx.gemm(a, b, ro)
    with pytest.raises(ValueError, match="beta != 0 needs an existing output"):
        nnx.gemm(a, b, beta=1.0)


def test_output_overlapping_input_rejected():
    buf = np.ones((4, 4), f32)
    with pytest.raises(ValueError, match="overlaps input a"):
        nnx.gemm(buf, np.ones((4, 4), f32), buf)


def test_bias_checks():
    a, b = np.ones((3, 4), f32), np.ones((4, 5), f32)
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\) for mode 'col'"):
        nnx.gemm(a, b, bias=np.ones(3, f32), bias_axis=1)
    with pytest.raises(ValueError, match="bias_axis must be 0"):
        nnx.gemm(a, b, bias=np.ones(5, f32), bias_axis=2)
    with pytest.raises(TypeError, match="bias must have the dtype"):
        nnx.gemm(a, b, bias=np.ones(5, np.float64), bias_axis=1)
    with pytest.raises(ValueError, match="no bias was given"):
        _core.gemm(a, b, np.empty((3, 5), f32), bias_mode="row")


def test_not_an_array():
    with pytest.raises(TypeError, match="a must be a numpy.ndarray, got list"):
        nnx.gemm([[1.0]], np.ones((1, 1), f32))
