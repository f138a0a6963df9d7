"""The C++ activation, softmax, loss and optimizer kernels (nnx._kernels -> nnx._core) against
the plain-numpy formulas of nnx._reference in float64, on every ISA level and edge sizes."""

import numpy as np
import pytest

from nnx import _core
from nnx import _kernels as K
from nnx import _reference as R

# Sizes around the vector widths (8, 16) and across the parallel chunk (16384).
SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 33, 1000, 40000]
SHAPES = [(1, 1), (3, 7), (5, 16), (4, 17), (2, 1000), (300, 10)]
SPECIAL = np.array([-100, -87.5, -30, -20.5, -3, -1, -0.7, -0.3, -1e-3, -1e-7, 0, 1e-7, 1e-3,
                    0.3, 0.62, 0.7, 1, 3, 19.9, 20.5, 30, 87, 100], np.float32)


def values(rng, n, scale=4.0):
    x = (rng.standard_normal(n) * scale).astype(np.float32)
    x[: min(n, SPECIAL.size)] = SPECIAL[: min(n, SPECIAL.size)]
    return x


def close(got, want, rtol=2e-6, atol=2e-7):
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", K.ACTIVATIONS)
def test_activations_match_reference(isa, name):
    rng = np.random.default_rng(0)
    alpha = 0.1 if name == "leaky_relu" else 1.3
    for n in SIZES:
        x = values(rng, n)
        x64 = x.astype(np.float64)
        y = K.act_forward(name, x, alpha)
        assert y.dtype == np.float32 and y.shape == x.shape
        y_ref = R.act_forward(name, x64, alpha)
        close(y, y_ref)
        gy = rng.standard_normal(n).astype(np.float32)
        g = K.act_backward(name, gy, x, y, alpha)
        # backward is checked given the same y it was given (the kernel's own forward output)
        close(g, R.act_backward(name, gy.astype(np.float64), x64, y.astype(np.float64), alpha))


@pytest.mark.parametrize("name", K.ACTIVATIONS)
def test_activations_float64_path(name):
    rng = np.random.default_rng(1)
    x = values(rng, 500).astype(np.float64)
    np.testing.assert_allclose(K.act_forward(name, x, 0.2), R.act_forward(name, x, 0.2),
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", K.ACTIVATIONS)
def test_activations_propagate_nan(isa, name):
    x = np.array([np.nan, 1.0, -1.0] * 6, np.float32)
    y = K.act_forward(name, x, 0.1)
    assert np.isnan(y[0]) and np.isnan(y[3]), f"{name} hid a NaN: {y[:4]}"
    assert np.all(np.isfinite(y[1::3]))


def test_softmax_and_log_softmax(isa):
    rng = np.random.default_rng(2)
    for shape in SHAPES:
        x = (rng.standard_normal(shape) * 5).astype(np.float32)
        x.flat[0] = 80.0  # large logits must not overflow
        x64 = x.astype(np.float64)
        y = K.softmax_forward(x)
        close(y, R.softmax_forward(x64))
        np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=1e-5)
        ly = K.log_softmax_forward(x)
        close(ly, R.log_softmax_forward(x64), rtol=2e-6, atol=2e-6)
        gy = rng.standard_normal(shape).astype(np.float32)
        # Backward sums C products in float32: allow C-term rounding in absolute terms.
        close(K.softmax_backward(gy, y),
              R.softmax_backward(gy.astype(np.float64), y.astype(np.float64)),
              atol=1e-6)
        close(K.log_softmax_backward(gy, ly),
              R.log_softmax_backward(gy.astype(np.float64), ly.astype(np.float64)), atol=2e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("prob_targets", [False, True])
def test_cross_entropy(isa, smoothing, prob_targets):
    rng = np.random.default_rng(3)
    for n, c in SHAPES:
        logits = (rng.standard_normal((n, c)) * 3).astype(np.float32)
        if prob_targets:
            target = rng.random((n, c)).astype(np.float32)
            target /= target.sum(axis=1, keepdims=True)
            t64 = target.astype(np.float64)
        else:
            target = rng.integers(0, c, n).astype(np.int64)
            t64 = target
        loss, probs = K.cross_entropy_forward(logits, target, smoothing)
        loss_ref, probs_ref = R.cross_entropy_forward(logits.astype(np.float64), t64, smoothing)
        close(loss, loss_ref, rtol=1e-5, atol=2e-6)
        close(probs, probs_ref)
        gl = rng.standard_normal(n).astype(np.float32)
        close(K.cross_entropy_backward(gl, probs, target, smoothing),
              R.cross_entropy_backward(gl.astype(np.float64), probs.astype(np.float64), t64,
                                       smoothing))


@pytest.mark.parametrize("name", K.ELEMENTWISE_LOSSES)
def test_elementwise_losses(isa, name):
    rng = np.random.default_rng(4)
    for n in SIZES:
        x = values(rng, n, 3.0)
        t = (rng.random(n) if name == "bce_with_logits"
             else rng.standard_normal(n)).astype(np.float32)
        x64, t64 = x.astype(np.float64), t.astype(np.float64)
        close(K.elementwise_loss_forward(name, x, t), R.elementwise_loss_forward(name, x64, t64),
              rtol=2e-6, atol=1e-6)
        g = rng.standard_normal(n).astype(np.float32)
        close(K.elementwise_loss_backward(name, g, x, t),
              R.elementwise_loss_backward(name, g.astype(np.float64), x64, t64))


@pytest.mark.parametrize("margin", [1.0, 0.5, 0.0])
def test_multiclass_hinge(isa, margin):
    rng = np.random.default_rng(5)
    for n, c in SHAPES:
        s = rng.standard_normal((n, c)).astype(np.float32)
        y = rng.integers(0, c, n).astype(np.int64)
        close(K.multiclass_hinge_forward(s, y, margin),
              R.multiclass_hinge_forward(s.astype(np.float64), y, margin), atol=1e-5)
        gl = rng.standard_normal(n).astype(np.float32)
        close(K.multiclass_hinge_backward(gl, s, y, margin),
              R.multiclass_hinge_backward(gl.astype(np.float64), s.astype(np.float64), y, margin))


def test_multiclass_hinge_lecture_example():
    # The 3-class score table of the classic lecture example: losses 2.9, 0, 12.9 (margin 1).
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]], np.float32)
    loss = K.multiclass_hinge_forward(scores, np.array([0, 1, 2]), 1.0)
    np.testing.assert_allclose(loss, [2.9, 0.0, 12.9], rtol=1e-6)
    assert abs(loss.mean() - 5.27) < 0.01


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                dict(momentum=0.8, dampening=0.3, weight_decay=0.01),
                                dict(weight_decay=0.1)])
def test_sgd_step(isa, kw):
    rng = np.random.default_rng(6)
    for n in [1, 17, 40000]:
        p = rng.standard_normal(n).astype(np.float32)
        p64 = p.astype(np.float64)
        buf, buf64 = np.zeros_like(p), np.zeros_like(p64)
        for step in range(4):
            g = rng.standard_normal(n).astype(np.float32)
            K.sgd_step(p, g, buf, lr=0.1, first_step=step == 0, **kw)
            R.sgd_step(p64, g.astype(np.float64), buf64, lr=0.1, first_step=step == 0, **kw)
        close(p, p64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.1),
                                dict(weight_decay=0.1, decoupled=True),
                                dict(beta1=0.5, beta2=0.9, eps=1e-6)])
def test_adam_step(isa, kw):
    rng = np.random.default_rng(7)
    for n in [1, 17, 40000]:
        p = rng.standard_normal(n).astype(np.float32)
        p64 = p.astype(np.float64)
        m, v = np.zeros_like(p), np.zeros_like(p)
        m64, v64 = np.zeros_like(p64), np.zeros_like(p64)
        for step in range(1, 6):
            g = rng.standard_normal(n).astype(np.float32)
            K.adam_step(p, g, m, v, step=step, lr=1e-2, **kw)
            R.adam_step(p64, g.astype(np.float64), m64, v64, step=step, lr=1e-2, **kw)
        close(p, p64, rtol=1e-5, atol=1e-6)
        close(m, m64, rtol=1e-5, atol=1e-6)
        close(v, v64, rtol=1e-5, atol=1e-6)


def test_adam_steps_is_adam_step_per_parameter(isa):
    # One call for a list of parameters (float32 and float64, each at its own step) gives the
    # bits of one adam_step call each; bad lists are clear errors.
    rng = np.random.default_rng(8)
    params = [rng.standard_normal(n).astype(dt) for n, dt in ((5, np.float32), (40000, np.float32),
                                                              (17, np.float64))]
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    states = [(np.abs(rng.standard_normal(p.shape)).astype(p.dtype),) * 2 for p in params]
    one = [[p.copy(), m.copy(), v.copy()] for p, (m, v) in zip(params, states)]
    for (p, m, v), g, step in zip(one, grads, (1, 4, 2)):
        K.adam_step(p, g, m, v, step=step, lr=1e-2, weight_decay=0.1)
    many = [[p.copy(), m.copy(), v.copy()] for p, (m, v) in zip(params, states)]
    K.adam_steps([a[0] for a in many], grads, [a[1] for a in many], [a[2] for a in many],
                 [1, 4, 2], lr=1e-2, weight_decay=0.1)
    for a, b in zip(one, many):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    p = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="must have the same length"):
        K.adam_steps([p], [p.copy()], [p.copy()], [p.copy()], [1, 2], lr=0.1)
    with pytest.raises(TypeError, match="params must hold numpy arrays"):
        K.adam_steps([[0.0, 1.0, 2.0]], [p.copy()], [p.copy()], [p.copy()], [1], lr=0.1)
    # A bad second parameter: the first is not updated either.
    first = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="grad"):
        K.adam_steps([first, p], [first.copy(), np.ones(4, np.float32)], [p.copy(), p.copy()],
                     [p.copy(), p.copy()], [1, 1], lr=0.1)
    assert np.array_equal(first, np.ones(3, np.float32))


@pytest.mark.parametrize("n", SIZES + [255, 256, 257, 65536 + 3, 300_000])
def test_sum_of_squares(isa, n):
    x = values(np.random.default_rng(n), n)
    want = float(np.sum(x.astype(np.float64) ** 2))
    assert K.sum_of_squares(x) == pytest.approx(want, rel=2e-6, abs=1e-30)
    assert K.sum_of_squares(x.astype(np.float64)) == pytest.approx(want, rel=1e-13, abs=1e-300)
    assert K.sum_of_squares(x.reshape(-1, 1)[::-1]) == pytest.approx(want, rel=2e-6, abs=1e-30)


def test_sum_of_squares_propagates_nan_and_inf(isa):
    x = np.ones(1000, np.float32)
    x[500] = np.inf
    assert K.sum_of_squares(x) == np.inf
    x[600] = np.nan
    assert np.isnan(K.sum_of_squares(x))


def test_thread_count_does_not_change_bits(isa, threads):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(100_003) * 4).astype(np.float32)
    logits = rng.standard_normal((5000, 37)).astype(np.float32)
    y = rng.integers(0, 37, 5000)
    out = []
    for t in (1, 2):
        _core.set_num_threads(t)
        p, m, v = x.copy(), np.zeros_like(x), np.zeros_like(x)
        K.adam_step(p, x[::-1].copy(), m, v, step=3, lr=1e-3)
        big = np.tile(x, 30)  # 3 M values: blocks of the sum spread over the threads
        out.append([np.float64(K.sum_of_squares(big))]
                   + [K.act_forward(n, x, 0.1) for n in K.ACTIVATIONS]
                   + list(K.cross_entropy_forward(logits, y, 0.1))
                   + [K.log_softmax_forward(logits), p, m, v])
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def test_bad_input_is_a_clear_error():
    with pytest.raises(IndexError,
                       match="target 10 at position 1 is not a class index in \\[0, 10\\)"):
        K.cross_entropy_forward(np.zeros((2, 10), np.float32), np.array([0, 10]))
    with pytest.raises(IndexError, match="target -1"):
        K.multiclass_hinge_forward(np.zeros((2, 3), np.float32), np.array([-1, 0]))
    with pytest.raises(ValueError, match="target must have shape \\(2,\\)"):
        K.cross_entropy_forward(np.zeros((2, 10), np.float32), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        K.act_forward("swish", np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="must be float32 or float64"):
        K.act_forward("relu", np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="input has shape \\(3,\\) but target has shape \\(4,\\)"):
        K.elementwise_loss_forward("mse", np.zeros(3, np.float32), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\]"):
        K.cross_entropy_forward(np.zeros((2, 3), np.float32), np.array([0, 1]), 1.5)
    with pytest.raises(ValueError, match="betas must be in \\[0, 1\\)"):
        p = np.zeros(3, np.float32)
        K.adam_step(p, p.copy(), p.copy(), p.copy(), step=1, lr=0.1, beta1=1.0)
    with pytest.raises(ValueError, match="momentum needs a momentum buffer"):
        p = np.zeros(3, np.float32)
        K.sgd_step(p, p.copy(), None, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="read-only"):
        p = np.zeros(3, np.float32)
        p.flags.writeable = False
        K.sgd_step(p, np.zeros(3, np.float32), None, lr=0.1)
