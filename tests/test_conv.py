"""Convolution, pooling, batch norm and dropout2d functions: gradient checks, PyTorch parity
(forward and every gradient, edge shapes included) and argument errors."""

import numpy as np
import pytest

import nnx
import nnx.nn.functional as F
from nnx.nn import functional_conv as FC
from nnx.testing import GradcheckError, gradcheck

RNG = np.random.default_rng(0)


def leaf(*shape, dtype=np.float64, rng=RNG):
    return nnx.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)


# ---------------------------------------------------------------------------------------------
# Finite-difference gradient checks (float64)

CONV_GEOMETRIES = [  # (input shape, weight shape, stride, padding, dilation)
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, 0, 1),
    ((1, 3, 6, 5), (2, 3, 3, 2), 2, 1, 1),
    ((2, 1, 7, 6), (2, 1, 2, 3), (1, 2), (2, 1), (2, 1)),
    ((1, 2, 4, 4), (2, 2, 1, 1), 3, 0, 1),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CONV_GEOMETRIES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_gradcheck(x_shape, w_shape, stride, padding, dilation, with_bias):
    x, w = leaf(*x_shape), leaf(*w_shape)
    b = leaf(w_shape[0]) if with_bias else None
    inputs = (x, w) + ((b,) if with_bias else ())
    assert gradcheck(lambda x, w, b=None: F.conv2d(x, w, b, stride, padding, dilation), inputs)


def test_conv2d_fused_relu_gradcheck():
    x, w, b = leaf(2, 2, 5, 5), leaf(3, 2, 3, 3), leaf(3)
    y = FC._conv2d(x, w, b, 1, 1, relu=True)
    assert (y.data >= 0).all() and (y.data == 0).any()
    np.testing.assert_allclose(y.data, np.maximum(F.conv2d(x, w, b, 1, 1).data, 0))
    assert gradcheck(lambda x, w, b: FC._conv2d(x, w, b, 1, 1, relu=True), (x, w, b))


def test_gradcheck_catches_a_wrong_conv_gradient(monkeypatch):
    x, w = leaf(1, 1, 4, 4), leaf(1, 1, 2, 2)
    real = FC.K.conv2d_backward
    monkeypatch.setattr(FC.K, "conv2d_backward",
                        lambda *a, **kw: tuple(None if g is None else g * 1.01
                                               for g in real(*a, **kw)))
    with pytest.raises(GradcheckError):
        gradcheck(lambda x, w: F.conv2d(x, w), (x, w))


def test_conv1d_gradcheck():
    x, w, b = leaf(2, 3, 9), leaf(2, 3, 3), leaf(2)
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2),
                     (x, w, b))


@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool2d(x, 2),
    lambda x: F.max_pool2d(x, 3, 2, 1),
    lambda x: F.avg_pool2d(x, (3, 2), (2, 1), (1, 0)),
    lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    lambda x: F.adaptive_avg_pool2d(x, 1),
])
def test_pooling_gradcheck(fn):
    # Spread-out values: finite differences must not move a max across a tie.
    x = nnx.tensor(RNG.permutation(2 * 2 * 6 * 7).reshape(2, 2, 6, 7) * 0.1, requires_grad=True)
    assert gradcheck(fn, x)


def test_pool1d_gradcheck():
    x = nnx.tensor(RNG.permutation(2 * 3 * 9).reshape(2, 3, 9) * 0.1, requires_grad=True)
    assert gradcheck(lambda x: F.max_pool1d(x, 3, 2, 1), x)
    assert gradcheck(lambda x: F.avg_pool1d(x, 4, 2, 2, count_include_pad=False), x)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_gradcheck(shape, affine):
    x = leaf(*shape)
    params = (leaf(shape[1]), leaf(shape[1])) if affine else ()
    assert gradcheck(lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True),
                     (x, *params))


def test_batch_norm_weight_without_bias_gradcheck():
    x, w = leaf(4, 3, 2), leaf(3)
    assert gradcheck(lambda x, w: F.batch_norm(x, None, None, w, training=True), (x, w))
    assert gradcheck(lambda x, w: F.batch_norm(x, np.zeros(3), np.ones(3), w), (x, w))


def test_batch_norm_eval_gradcheck():
    x, w, b = leaf(4, 3, 2, 2), leaf(3), leaf(3)
    mean, var = RNG.standard_normal(3), RNG.random(3) + 0.5
    assert gradcheck(lambda x, w, b: F.batch_norm(x, mean, var, w, b), (x, w, b))


# ---------------------------------------------------------------------------------------------
# PyTorch parity: forward and every gradient

def torch_pair(torch, *arrays):
    """nnx leaves and torch leaves holding the same values."""
    ours = [nnx.tensor(a, requires_grad=True) if a is not None else None for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) if a is not None else None for a in arrays]
    return ours, theirs


def assert_same_grads(torch, y, ty, ours, theirs, dtype):
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol)
    g = RNG.standard_normal(ty.shape).astype(dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for a, t in zip(ours, theirs):
        if a is not None:
            np.testing.assert_allclose(a.grad.data, t.grad.numpy(), **tol)


CONV_EDGES = [  # (input shape, weight shape, stride, padding, dilation)
    ((2, 3, 5, 5), (4, 3, 1, 1), 1, 0, 1),           # 1x1 kernel
    ((1, 2, 9, 11), (3, 2, 7, 7), 1, 3, 1),          # 7x7 kernel, padding 3
    ((2, 3, 8, 8), (5, 3, 3, 3), 2, 1, 1),           # stride 2
    ((2, 1, 10, 7), (2, 1, 3, 3), 3, 2, 1),          # stride 3, padding 2
    ((3, 5, 13, 7), (4, 5, 5, 3), (2, 1), (2, 0), (1, 2)),  # odd sizes, mixed pairs
    ((1, 1, 6, 6), (1, 1, 3, 3), 1, 0, 1),           # batch 1, one channel
    ((2, 3, 5, 5), (2, 3, 5, 5), 1, 0, 1),           # output 1x1
    ((2, 2, 9, 9), (3, 2, 3, 3), 2, 3, 2),           # dilation 2, padding 3
    ((4, 16, 14, 14), (17, 16, 3, 3), 1, 1, 1),      # wider, more than one SIMD tile
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CONV_EDGES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding, dilation, dtype):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(x_shape).astype(dtype)
    w = RNG.standard_normal(w_shape).astype(dtype)
    for b in (RNG.standard_normal(w_shape[0]).astype(dtype), None):
        ours, theirs = torch_pair(torch, x, w, b)
        y = F.conv2d(*ours, stride, padding, dilation)
        ty = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding,
                                        dilation=dilation)
        assert y.shape == tuple(ty.shape)
        assert_same_grads(torch, y, ty, ours, theirs, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_fused_relu_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    arrays = [RNG.standard_normal(s).astype(dtype) for s in ((2, 3, 8, 7), (4, 3, 3, 3), (4,))]
    ours, theirs = torch_pair(torch, *arrays)
    y = FC._conv2d(*ours, 2, 1, relu=True)
    ty = torch.relu(torch.nn.functional.conv2d(*theirs, stride=2, padding=1))
    assert_same_grads(torch, y, ty, ours, theirs, dtype)


def test_conv1d_matches_torch():
    torch = pytest.importorskip("torch")
    arrays = [RNG.standard_normal(s) for s in ((3, 4, 17), (5, 4, 3), (5,))]
    ours, theirs = torch_pair(torch, *arrays)
    y = F.conv1d(*ours, stride=2, padding=2, dilation=3)
    ty = torch.nn.functional.conv1d(*theirs, stride=2, padding=2, dilation=3)
    assert_same_grads(torch, y, ty, ours, theirs, np.float64)


POOL_EDGES = [  # (input shape, kernel, stride, padding)
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 3, 7, 9), 3, 2, 1),
    ((1, 1, 10, 11), 3, 3, 1),            # stride 3, odd sizes, batch 1, one channel
    ((2, 2, 9, 8), (3, 2), (1, 2), (1, 0)),
    ((2, 4, 7, 7), 7, 1, 0),              # output 1x1
    ((1, 2, 12, 12), 5, 2, 2),            # padding 2
    ((3, 2, 5, 6), 1, 1, 0),              # 1x1 window
]


@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_EDGES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_matches_torch(x_shape, kernel, stride, padding, dtype):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(x_shape).astype(dtype)
    ours, theirs = torch_pair(torch, x)
    y, idx = F.max_pool2d(ours[0], kernel, stride, padding, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(theirs[0], kernel, stride, padding,
                                              return_indices=True)
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    assert idx.dtype == np.int64 and not idx.requires_grad
    assert_same_grads(torch, y, ty, ours, theirs, dtype)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_EDGES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_matches_torch(x_shape, kernel, stride, padding, count_include_pad, dtype):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(x_shape).astype(dtype)
    ours, theirs = torch_pair(torch, x)
    y = F.avg_pool2d(ours[0], kernel, stride, padding, count_include_pad=count_include_pad)
    ty = torch.nn.functional.avg_pool2d(theirs[0], kernel, stride, padding,
                                        count_include_pad=count_include_pad)
    assert_same_grads(torch, y, ty, ours, theirs, dtype)


def test_avg_pool2d_count_include_pad_semantics():
    # A 2x2 image of ones, 3x3 windows with padding 1: each window covers 4 real positions.
    x = nnx.ones(1, 1, 2, 2)
    np.testing.assert_allclose(F.avg_pool2d(x, 3, 1, 1).data, np.full((1, 1, 2, 2), 4 / 9),
                               rtol=1e-6)
    np.testing.assert_allclose(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False).data,
                               np.ones((1, 1, 2, 2)), rtol=1e-6)


@pytest.mark.parametrize("x_shape, size", [
    ((2, 3, 7, 7), 1), ((2, 3, 7, 7), (3, 3)), ((1, 2, 9, 10), (4, 5)),
    ((2, 1, 3, 3), (5, 5)), ((2, 2, 6, 5), (None, 2)), ((1, 1, 1, 1), 1),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_pool2d_matches_torch(x_shape, size, dtype):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(x_shape).astype(dtype)
    ours, theirs = torch_pair(torch, x)
    y = F.adaptive_avg_pool2d(ours[0], size)
    ty = torch.nn.functional.adaptive_avg_pool2d(theirs[0], size)
    assert_same_grads(torch, y, ty, ours, theirs, dtype)


def test_pool1d_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 3, 11))
    for ours_fn, theirs_fn in [
        (lambda t: F.max_pool1d(t, 3, 2, 1), lambda t: torch.nn.functional.max_pool1d(t, 3, 2, 1)),
        (lambda t: F.avg_pool1d(t, 4, 3, 2, count_include_pad=False),
         lambda t: torch.nn.functional.avg_pool1d(t, 4, 3, 2, count_include_pad=False)),
    ]:
        ours, theirs = torch_pair(torch, x)
        assert_same_grads(torch, ours_fn(ours[0]), theirs_fn(theirs[0]), ours, theirs,
                          np.float64)
    _, idx = F.max_pool1d(nnx.tensor(x), 3, return_indices=True)
    _, tidx = torch.nn.functional.max_pool1d(torch.tensor(x), 3, return_indices=True)
    np.testing.assert_array_equal(idx.data, tidx.numpy())


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (4, 3, 5, 6), (1, 2, 1, 2)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_train_matches_torch(shape, affine, dtype):
    torch = pytest.importorskip("torch")
    x = (RNG.standard_normal(shape) * 2 + 1).astype(dtype)
    c = shape[1]
    wb = [RNG.standard_normal(c).astype(dtype) for _ in range(2)] if affine else [None, None]
    ours, theirs = torch_pair(torch, x, *wb)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    y = F.batch_norm(ours[0], rm, rv, *ours[1:], training=True, momentum=0.3)
    ty = torch.nn.functional.batch_norm(theirs[0], trm, trv, *theirs[1:], training=True,
                                        momentum=0.3)
    assert_same_grads(torch, y, ty, ours, theirs, dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(rm, trm.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=tol, atol=tol)
    assert rm.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_eval_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((4, 3, 5, 5)).astype(dtype)
    w, b = RNG.standard_normal(3).astype(dtype), RNG.standard_normal(3).astype(dtype)
    rm, rv = RNG.standard_normal(3).astype(dtype), (RNG.random(3) + 0.1).astype(dtype)
    ours, theirs = torch_pair(torch, x, w, b)
    y = F.batch_norm(ours[0], rm, rv, *ours[1:], training=False, eps=1e-3)
    ty = torch.nn.functional.batch_norm(theirs[0], torch.tensor(rm), torch.tensor(rv),
                                        *theirs[1:], training=False, eps=1e-3)
    assert_same_grads(torch, y, ty, ours, theirs, dtype)


def test_batch_norm_training_ignores_running_stats_for_the_output():
    x = nnx.tensor(RNG.standard_normal((6, 2)))
    rm, rv = np.full(2, 100.0), np.full(2, 1e-3)
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.0)
    np.testing.assert_allclose(y.data.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.data.std(0), 1, atol=1e-4)
    np.testing.assert_array_equal(rm, 100.0)  # momentum 0 leaves them unchanged


# ---------------------------------------------------------------------------------------------
# Dropout2d

def test_dropout2d_zeroes_whole_channels():
    nnx.manual_seed(0)
    x = nnx.tensor(RNG.random((8, 16, 3, 4)) + 1, requires_grad=True)
    y = F.dropout2d(x, 0.25)
    kept = y.data[:, :, :1, :1] != 0  # x > 0, so a zero means a dropped channel
    np.testing.assert_allclose(y.data, x.data * kept / 0.75, rtol=1e-12)
    assert 0.6 < kept.mean() < 0.9
    y.backward(np.ones(y.shape))
    np.testing.assert_allclose(x.grad.data, np.broadcast_to(kept / 0.75, x.shape))
    assert F.dropout2d(x, 0.25, training=False) is x
    assert (F.dropout2d(x, 1.0).data == 0).all()


# ---------------------------------------------------------------------------------------------
# Argument errors

X4 = nnx.zeros(64, 1, 28, 28)
W4 = nnx.zeros(6, 1, 5, 5)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.conv2d(nnx.zeros(1, 28, 28), W4), ValueError, r"conv2d: input must be 4-D"),
    (lambda: F.conv2d(X4, nnx.zeros(6, 5, 5)), ValueError, r"conv2d: weight must be 4-D"),
    (lambda: F.conv2d(X4, nnx.zeros(6, 3, 5, 5)), ValueError,
     r"^conv2d: weight has 3 input channels but input has 1 \(input shape \(64, 1, 28, 28\)\)$"),
    (lambda: F.conv2d(nnx.zeros(1, 1, 4, 4), W4), ValueError,
     r"conv2d: kernel size \(5, 5\) is larger than the padded input \(4, 4\)"),
    (lambda: F.conv2d(nnx.zeros(1, 1, 6, 6), nnx.zeros(1, 1, 3, 3), dilation=3), ValueError,
     r"dilated to \(7, 7\)"),
    (lambda: F.conv2d(X4, W4, stride=0), ValueError, r"conv2d: stride must be positive"),
    (lambda: F.conv2d(X4, W4, stride=(1, -2)), ValueError, r"stride must be positive"),
    (lambda: F.conv2d(X4, W4, padding=-1), ValueError, r"padding must be non-negative"),
    (lambda: F.conv2d(X4, W4, dilation=0), ValueError, r"dilation must be positive"),
    (lambda: F.conv2d(X4, W4, stride="2"), TypeError, r"stride must be an int or a tuple"),
    (lambda: F.conv2d(X4, W4, padding=(1, 2, 3)), TypeError, r"tuple of 2 ints"),
    (lambda: F.conv2d(X4, W4, stride=1.5), TypeError, r"stride"),
    (lambda: F.conv2d(nnx.zeros(1, 1, 8, 8, dtype=np.int64), W4), TypeError,
     r"conv2d: input must be float32 or float64, got int64"),
    (lambda: F.conv2d(X4, W4, nnx.zeros(5)), ValueError, r"conv2d: bias must have shape \(6,\)"),
    (lambda: F.conv2d(X4, W4.double()), TypeError, r"input is float32 but weight is float64"),
    (lambda: F.conv2d(X4, W4, groups=2), NotImplementedError, r"groups=2"),
    (lambda: F.conv2d(X4.numpy().tolist(), W4), TypeError, r"input must be a Tensor"),
    (lambda: F.conv1d(X4, W4), ValueError, r"conv1d: input must be 3-D \(N, C, L\)"),
    (lambda: F.conv1d(nnx.zeros(2, 3, 9), nnx.zeros(4, 2, 3)), ValueError,
     r"conv1d: weight has 2 input channels but input has 3"),
    (lambda: F.max_pool2d(nnx.zeros(1, 4, 4), 2), ValueError, r"max_pool2d: input must be 4-D"),
    (lambda: F.max_pool2d(X4, 2, padding=2), ValueError,
     r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(2, 2\)"),
    (lambda: F.max_pool2d(nnx.zeros(1, 1, 3, 3), 4), ValueError,
     r"max_pool2d: kernel size \(4, 4\) is larger than the padded input \(3, 3\)"),
    (lambda: F.max_pool2d(X4, 0), ValueError, r"kernel_size must be positive"),
    (lambda: F.max_pool2d(X4, 2, dilation=2), NotImplementedError, r"dilation"),
    (lambda: F.max_pool2d(X4, 2, ceil_mode=True), NotImplementedError, r"ceil_mode"),
    (lambda: F.avg_pool2d(X4, 2, stride=-1), ValueError, r"avg_pool2d: stride must be positive"),
    (lambda: F.avg_pool2d(X4, 2, divisor_override=3), NotImplementedError, r"divisor_override"),
    (lambda: F.adaptive_avg_pool2d(X4, 0), ValueError, r"output_size must be positive"),
    (lambda: F.adaptive_avg_pool2d(nnx.zeros(3, 4), 1), ValueError, r"must be 4-D"),
    (lambda: F.batch_norm(X4, None, None), ValueError,
     r"running_mean and running_var are required when training=False"),
    (lambda: F.batch_norm(X4, np.zeros(2), np.ones(2)), ValueError,
     r"running_mean must have shape \(1,\)"),
    (lambda: F.batch_norm(X4, np.zeros(1), None), ValueError, r"give both"),
    (lambda: F.batch_norm(X4, None, None, nnx.ones(3), training=True), ValueError,
     r"weight must have shape \(1,\)"),
    (lambda: F.batch_norm(nnx.zeros(1, 3), None, None, training=True), ValueError,
     r"more than 1 value per channel"),
    (lambda: F.batch_norm(nnx.zeros(3), None, None, training=True), ValueError,
     r"\(N, C\) or \(N, C, \.\.\.\)"),
    (lambda: F.dropout2d(nnx.zeros(3, 4), 0.5), ValueError, r"dropout2d: input must be 4-D"),
    (lambda: F.dropout2d(X4, 1.5), ValueError, r"p must be a probability"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_no_grad_and_empty_batch():
    w = leaf(3, 2, 3, 3)
    with nnx.no_grad():
        y = F.conv2d(nnx.tensor(RNG.standard_normal((2, 2, 5, 5))), w, padding=1)
    assert y.grad_fn is None and y.shape == (2, 3, 5, 5)
    y = F.conv2d(nnx.zeros(0, 2, 5, 5, dtype=np.float64), w)
    assert y.shape == (0, 3, 3, 3)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, 0)
