"""The C++ convolution, pooling and batch-norm kernels (nnx._kernels -> nnx._core) against the
float64 numpy formulas of nnx._reference, on every ISA level and the edge shapes of a CNN."""

import numpy as np
import pytest

from nnx import _core
from nnx import _kernels as K
from nnx import _reference as R

# (x shape, w shape, stride, padding, dilation): 1x1 and 7x7 kernels, strides 2 and 3, padding
# larger than 1, odd sizes, batch 1, one channel, a 1x1 output, dilation, and LeNet's layers.
CONV_CASES = [
    ((2, 3, 9, 8), (4, 3, 3, 2), (1, 1), (0, 0), (1, 1)),
    ((1, 1, 5, 5), (2, 1, 1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 4, 6, 7), (3, 4, 1, 1), (2, 2), (0, 0), (1, 1)),
    ((2, 3, 11, 13), (5, 3, 7, 7), (3, 3), (3, 2), (1, 1)),
    ((3, 2, 11, 7), (5, 2, 3, 3), (2, 3), (2, 1), (1, 1)),
    ((2, 3, 7, 9), (4, 3, 2, 3), (1, 2), (1, 1), (2, 1)),
    ((1, 1, 3, 3), (1, 1, 3, 3), (1, 1), (0, 0), (1, 1)),
    ((5, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1)),
    ((4, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2), (1, 1)),
    ((2, 40, 9, 9), (5, 40, 3, 3), (1, 1), (1, 1), (1, 1)),
    # Stride 1 runs in the wide layout: with dilation and uneven padding, many images per chunk,
    # and more filters than the in-place weight-gradient kernel takes.
    ((9, 3, 12, 11), (4, 3, 3, 2), (1, 1), (2, 1), (2, 2)),
    ((3, 4, 6, 6), (40, 4, 3, 3), (1, 1), (1, 1), (1, 1)),
    # Stride 1 without padding whose output rows are much narrower than the input's run in the
    # compact layout (unpadded im2col / col2im): rows wider than a vector, dilation, many filters.
    ((2, 3, 20, 37), (4, 3, 5, 9), (1, 1), (0, 0), (1, 1)),
    ((3, 2, 13, 12), (3, 2, 3, 3), (1, 1), (0, 0), (2, 3)),
    ((2, 4, 8, 8), (40, 4, 3, 3), (1, 1), (0, 0), (1, 1)),
    # Stride 1 with output rows that fill their vectors runs the direct kernel (forward, and the
    # input gradient as the transposed convolution when its padding adds little): rows of
    # several vectors, the last partial, with dilation, uneven padding and filters that do not
    # fill the register tile; one-vector rows in a partial tile; padding beyond the kernel's
    # reach (input gradient by the GEMM).
    ((2, 3, 9, 75), (13, 3, 3, 5), (1, 1), (2, 2), (2, 1)),
    ((3, 2, 7, 16), (7, 2, 3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 2, 5, 30), (3, 2, 3, 3), (1, 1), (3, 1), (1, 1)),
    # Weight gradients by the direct kernel (filters that fill their vectors, 3 or 5 wide):
    # more filters than one pass takes, stride and dilation down the rows; stride 2 both ways.
    ((2, 3, 11, 10), (80, 3, 3, 3), (2, 1), (1, 1), (2, 1)),
    ((3, 2, 9, 9), (16, 2, 5, 5), (2, 2), (2, 2), (1, 1)),
]

POOL_CASES = [  # (x shape, kernel, stride, padding)
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((2, 3, 9, 7), (3, 3), (2, 2), (1, 1)),
    ((1, 1, 5, 6), (3, 2), (1, 2), (1, 0)),
    ((2, 2, 33, 35), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 7, 40), (3, 3), (3, 3), (1, 1)),
    ((1, 1, 4, 4), (4, 4), (1, 1), (0, 0)),
    ((3, 2, 10, 10), (2, 2), (2, 2), (0, 0)),  # 2 x 2 windows, LeNet's second pooling
    ((1, 2, 5, 65), (2, 2), (2, 2), (0, 0)),   # 32 windows per row, an odd row and column left
    ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0)),    # rows of 4 windows, an odd row and column left
]


def rel_err(got, want):
    return float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_reference(isa, case, bias):
    xs, ws, st, pd, dl = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if bias else None
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    b64 = None if b is None else b.astype(np.float64)
    y = K.conv2d_forward(x, w, b, st, pd, dl)
    assert rel_err(y, R.conv2d_forward(x64, w64, b64, st, pd, dl)) < 2e-6
    relu = K.conv2d_forward(x, w, b, st, pd, dl, relu=True)
    assert np.array_equal(relu, np.maximum(y, 0))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    got = K.conv2d_backward(gy, x, w, st, pd, dl)
    want = R.conv2d_backward(gy.astype(np.float64), x64, w64, st, pd, dl)
    for g, r in zip(got, want):
        assert g.shape == r.shape and rel_err(g, r) < 2e-6
    gx, gw, gb = K.conv2d_backward(gy, x, w, st, pd, dl, needs=(False, True, False))
    assert gx is None and gb is None and np.array_equal(gw, got[1])


@pytest.mark.parametrize("padding", [(1, 1), (0, 0)])
def test_conv2d_weight_gradient_of_many_images(isa, padding):
    # Enough images that the weight-gradient kernels sum several images per call and several
    # calls per group of images, in uneven groups (70 images).
    rng = np.random.default_rng(7)
    x = rng.standard_normal((70, 2, 30, 30)).astype(np.float32)
    w = rng.standard_normal((16, 2, 3, 3)).astype(np.float32)
    gy = rng.standard_normal(K.conv2d_forward(x, w, None, (1, 1), padding, (1, 1)).shape)
    gy = gy.astype(np.float32)
    got = K.conv2d_backward(gy, x, w, (1, 1), padding, (1, 1), needs=(False, True, True))
    want = R.conv2d_backward(gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                             (1, 1), padding, (1, 1))
    # Each weight's gradient sums 63,000 float32 products: round-off grows to a few 1e-6.
    assert rel_err(got[1], want[1]) < 3e-5 and rel_err(got[2], want[2]) < 3e-5


# Input gradients with a vector's worth of images in the lanes (stride 1, batches that fill
# their vectors, layers whose transposed convolution would read too much of dy's padding):
# LeNet's second layer; a last block of images partly filled (30 = 16 + 14 or 3 x 8 + 6),
# channels in tiles of uneven sizes, uneven padding and dilation; a one-column output; padding
# beyond the kernel's reach.
LANES_CASES = [
    ((64, 6, 14, 14), (16, 6, 5, 5), (0, 0), (1, 1)),
    ((30, 13, 9, 11), (7, 13, 3, 4), (1, 0), (1, 2)),
    ((16, 2, 6, 7), (3, 2, 5, 5), (1, 1), (1, 2)),
    ((30, 7, 10, 10), (5, 7, 7, 5), (0, 0), (1, 1)),
    ((14, 3, 5, 6), (2, 3, 3, 3), (3, 2), (1, 1)),
]


@pytest.mark.parametrize("case", LANES_CASES)
def test_conv2d_input_gradient_with_images_in_lanes(isa, case):
    xs, ws, pd, dl = case
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    gy = rng.standard_normal(K.conv2d_forward(x, w, None, (1, 1), pd, dl).shape)
    gy = gy.astype(np.float32)
    got = K.conv2d_backward(gy, x, w, (1, 1), pd, dl, needs=(True, False, False))[0]
    want = R.conv2d_backward(gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                             (1, 1), pd, dl)[0]
    assert rel_err(got, want) < 2e-6


def test_conv2d_float64_is_the_reference():
    xs, ws, st, pd, dl = CONV_CASES[4]
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    np.testing.assert_allclose(K.conv2d_forward(x, w, b, st, pd, dl),
                               R.conv2d_forward(x, w, b, st, pd, dl),
                               rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(K.conv2d_forward(x, w, b, st, pd, dl).shape)
    for g, r in zip(K.conv2d_backward(gy, x, w, st, pd, dl),
                    R.conv2d_backward(gy, x, w, st, pd, dl)):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_matches_reference(isa, case):
    xs, k, s, p = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs).astype(np.float32)
    x.flat[::7] = x.flat[1::7]  # ties: the first position in the window must win
    y, idx = K.max_pool2d_forward(x, k, s, p)
    ry, ridx = R.max_pool2d_forward(x, k, s, p)
    assert np.array_equal(y, ry) and np.array_equal(idx, ridx)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    assert rel_err(K.max_pool2d_backward(gy, idx, xs),
                   R.max_pool2d_backward(gy.astype(np.float64), idx, xs)) < 1e-6


def test_max_pool_propagates_nan_and_handles_minus_inf(isa):
    x = np.full((1, 1, 4, 4), -np.inf, np.float32)
    x[0, 0, 1, 1] = np.nan
    y, idx = K.max_pool2d_forward(x, (2, 2), (2, 2))
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 5
    assert y[0, 0, 1, 1] == -np.inf and 0 <= idx[0, 0, 1, 1] < 16  # never a padding position


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 9, 35), (2, 1, 6, 64), (3, 2, 10, 10),
                                   (2, 3, 7, 9)])
def test_max_pool_2x2_ties_nan_and_minus_inf_in_every_window_position(isa, shape):
    """2 x 2 windows at stride 2 have their own kernel: few distinct values (ties everywhere),
    NaN and -inf scattered over all four window positions, indices equal to the reference's."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, shape).astype(np.float32)
    x[rng.random(shape) < 0.1] = np.nan
    x[rng.random(shape) < 0.2] = -np.inf
    y, idx = K.max_pool2d_forward(x, (2, 2), (2, 2))
    ry, ridx = R.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.array_equal(y, ry, equal_nan=True) and np.array_equal(idx, ridx)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 2, 9, 35), (3, 2, 10, 10), (2, 1, 7, 9)])
def test_max_pool_backward_with_indices_outside_their_windows(isa, shape):
    """Shapes of 2 x 2 pooling take a kernel that writes each window's four gradients at once;
    indices elsewhere in the plane (not from such a forward) must still scatter-add correctly,
    and an index outside the plane must still raise."""
    rng = np.random.default_rng(6)
    out = (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    gy = rng.standard_normal(out).astype(np.float32)
    _, own = K.max_pool2d_forward(rng.standard_normal(shape).astype(np.float32), (2, 2), (2, 2))
    shared = np.zeros(out, np.int64)  # every window's gradient onto the plane's first value
    moved = own.copy()
    moved.flat[-1] = 0  # one index outside its window, found last
    for idx in (own, shared, moved):
        want = R.max_pool2d_backward(gy.astype(np.float64), idx, shape)
        assert rel_err(K.max_pool2d_backward(gy, idx, shape), want) < 1e-6
    bad = own.copy()
    bad.flat[-1] = shape[2] * shape[3]
    with pytest.raises(IndexError, match="outside"):
        K.max_pool2d_backward(gy, bad, shape)


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_matches_reference(isa, case, count_include_pad):
    xs, k, s, p = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(xs).astype(np.float32)
    y = K.avg_pool2d_forward(x, k, s, p, count_include_pad)
    assert rel_err(y, R.avg_pool2d_forward(x.astype(np.float64), k, s, p, count_include_pad)) < 1e-6
    gy = rng.standard_normal(y.shape).astype(np.float32)
    assert rel_err(K.avg_pool2d_backward(gy, xs, k, s, p, count_include_pad),
                   R.avg_pool2d_backward(gy.astype(np.float64), xs, k, s, p,
                                         count_include_pad)) < 1e-6


@pytest.mark.parametrize("out", [(1, 1), (3, 3), (4, 5), (7, 7)])
def test_adaptive_avg_pool_matches_reference(out):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    y = K.adaptive_avg_pool2d_forward(x, out)
    assert rel_err(y, R.adaptive_avg_pool2d_forward(x.astype(np.float64), out)) < 1e-6
    gy = rng.standard_normal(y.shape).astype(np.float32)
    assert rel_err(K.adaptive_avg_pool2d_backward(gy, x.shape),
                   R.adaptive_avg_pool2d_backward(gy.astype(np.float64), x.shape)) < 1e-6


@pytest.mark.parametrize("shape", [(8, 5), (1, 3), (4, 3, 7, 9), (2, 16, 5, 5), (3, 2, 40)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_reference(isa, shape, affine):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    c = shape[1]
    gamma = rng.standard_normal(c).astype(np.float32) if affine else None
    beta = rng.standard_normal(c).astype(np.float32) if affine else None
    g64 = None if gamma is None else gamma.astype(np.float64)
    b64 = None if beta is None else beta.astype(np.float64)
    y, mean, invstd = K.batch_norm_forward_train(x, gamma, beta, 1e-5)
    ry, rmean, rinv = R.batch_norm_forward_train(x.astype(np.float64), g64, b64, 1e-5)
    assert rel_err(y, ry) < 1e-5 and rel_err(mean, rmean) < 1e-6 and rel_err(invstd, rinv) < 1e-5
    gy = rng.standard_normal(shape).astype(np.float32)
    got = K.batch_norm_backward(gy, x, gamma, mean, invstd)
    want = R.batch_norm_backward(gy.astype(np.float64), x.astype(np.float64), g64,
                                 mean.astype(np.float64), invstd.astype(np.float64))
    for g, r in zip(got, want):
        assert rel_err(g, r) < 2e-5
    rm, rv = rng.standard_normal(c).astype(np.float32), rng.random(c).astype(np.float32) + 0.5
    assert rel_err(K.batch_norm_forward_eval(x, rm, rv, gamma, beta, 1e-5),
                   R.batch_norm_forward_eval(x.astype(np.float64), rm, rv, g64, b64, 1e-5)) < 1e-6


def test_thread_count_does_not_change_bits(isa, threads):
    rng = np.random.default_rng(6)
    # Large enough (117,600 values) that pooling and batch norm do split across threads.
    x = rng.standard_normal((100, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    # The direct kernel's path, one image: its filters split between threads.
    x1 = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    w1 = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    # The input gradient with images in lanes, one block of them: its channels split between
    # threads (x's 100 images are 7 blocks, the last one partly filled).
    x16 = rng.standard_normal((16, 6, 14, 14)).astype(np.float32)
    gy16 = rng.standard_normal((16, 16, 10, 10)).astype(np.float32)
    out = []
    for t in (1, 2, 3):
        _core.set_num_threads(t)
        y = K.conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1))
        gy = np.cos(y)
        y1 = K.conv2d_forward(x1, w1, b, (1, 1), (1, 1), (1, 1))
        out.append([y, *K.conv2d_backward(gy, x, w, (1, 1), (1, 1), (1, 1)),
                    y1, *K.conv2d_backward(np.cos(y1), x1, w1, (1, 1), (1, 1), (1, 1)),
                    *K.conv2d_backward(gy16, x16, w, (1, 1), (0, 0), (1, 1)),
                    *K.max_pool2d_forward(x, (2, 2), (2, 2)),
                    *K.batch_norm_forward_train(x, None, None, 1e-5),
                    *K.batch_norm_backward(np.cos(x), x, None,
                                           *K.batch_norm_forward_train(x, None, None, 1e-5)[1:])])
    for other in out[1:]:
        for a, b_ in zip(out[0], other):
            assert np.array_equal(a, b_)


def test_bad_input_is_a_clear_error():
    x = np.zeros((2, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"weight has 1 input channels but input has 3 "
                                         r"\(input shape \(2, 3, 5, 5\)\)"):
        K.conv2d_forward(x, np.zeros((4, 1, 3, 3), np.float32), None)
    with pytest.raises(ValueError,
                       match=r"kernel \(7, 7\) .* larger than the padded input \(5, 5\)"):
        K.conv2d_forward(x, np.zeros((4, 3, 7, 7), np.float32), None)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        K.conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float32), None, stride=(0, 1))
    with pytest.raises(ValueError, match="padding must be >= 0"):
        K.conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float32), None, padding=(-1, 0))
    with pytest.raises(ValueError, match="x must be 4-D"):
        K.conv2d_forward(x[0], np.zeros((4, 3, 3, 3), np.float32), None)
    with pytest.raises(ValueError, match="padding .* must be between 0 and half the kernel"):
        K.max_pool2d_forward(x, (2, 2), (2, 2), (2, 2))
    with pytest.raises(ValueError, match="larger than the padded input"):
        K.avg_pool2d_forward(x, (6, 6), (1, 1))
    with pytest.raises(IndexError, match="index 99 at position 0 is outside"):
        K.max_pool2d_backward(np.ones((2, 3, 2, 2), np.float32), np.full((2, 3, 2, 2), 99), x.shape)
    with pytest.raises(TypeError, match="must be float32 or float64"):
        K.conv2d_forward(x.astype(np.int32), np.zeros((4, 3, 3, 3), np.int32), None)
