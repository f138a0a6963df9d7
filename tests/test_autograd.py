"""The backward engine, grad mode and Function contract."""

import gc
import threading
import weakref

import numpy as np
import pytest

import nnx
from nnx.autograd import Function


def test_gradients_accumulate_across_backward_calls():
    x = nnx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 4, 6])
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5, 7, 9])
    x.grad = None
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1, 1])
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])


def test_shared_subexpression_sums_all_paths():
    x = nnx.tensor(2.0, requires_grad=True)
    y = x * x          # used three times below
    z = y * y + y + x  # x^4 + x^2 + x  -> 4x^3 + 2x + 1 = 37
    z.backward()
    assert x.grad.item() == 37.0


def test_leaf_grads_never_alias_each_other_or_the_callers_gradient():
    a = nnx.tensor([1.0, 2.0], requires_grad=True)
    b = nnx.tensor([3.0, 4.0], requires_grad=True)
    g = np.array([1.0, 1.0], np.float32)
    (a + b).backward(g)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, g)
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), [1, 1])
    np.testing.assert_array_equal(g, [1, 1])


def test_broadcast_gradients_have_input_shapes_and_dtypes():
    a = nnx.tensor(np.ones((4, 3)), requires_grad=True)          # float64
    b = nnx.tensor(np.ones(3, np.float32), requires_grad=True)   # float32, broadcast
    c = nnx.tensor(np.ones((4, 1), np.float32), requires_grad=True)
    (a * b + c).sum().backward()
    assert a.grad.shape == (4, 3) and a.grad.dtype == np.float64
    assert b.grad.shape == (3,) and b.grad.dtype == np.float32
    np.testing.assert_array_equal(b.grad.numpy(), [4, 4, 4])
    np.testing.assert_array_equal(c.grad.numpy(), [[3]] * 4)


def test_backward_errors():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"implicitly only for scalar outputs, got shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        nnx.tensor([1.0]).sum().backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\)"):
        (x * 2).backward(nnx.ones(3))
    (x * 2).backward(nnx.ones(2))  # explicit gradient of the right shape works
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2])


def test_second_backward_needs_retain_graph():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_saved_arrays_are_freed_after_backward():
    x = nnx.tensor(np.ones(1000), requires_grad=True)
    y = x.exp()                        # saves its output array
    saved = weakref.ref(y.data)
    loss = (y * 2).sum()
    del y
    gc.collect()
    assert saved() is not None         # still needed by the graph
    loss.backward()
    gc.collect()
    assert saved() is None             # freed, although `loss` (and its graph) is alive
    assert loss.grad_fn is not None


def test_no_grad_blocks_graph_building():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    with nnx.no_grad():
        y = x * 2
        assert not nnx.is_grad_enabled()
        with nnx.enable_grad():
            z = x * 2
    assert nnx.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn is not None

    @nnx.no_grad()
    def evaluate(t):
        return t * 3

    assert not evaluate(x).requires_grad
    assert nnx.is_grad_enabled()

    nnx.set_grad_enabled(False)
    assert not (x * 2).requires_grad
    nnx.set_grad_enabled(True)
    with nnx.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_grad_mode_is_per_thread():
    seen = []
    with nnx.no_grad():
        t = threading.Thread(target=lambda: seen.append(nnx.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_detach_shares_data_and_cuts_the_graph():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 4])  # d treated as a constant


def test_requires_grad_rules():
    x = nnx.tensor([1.0])
    assert not (x * 2).requires_grad
    x.requires_grad_()
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="floating point"):
        nnx.tensor([1, 2], requires_grad=True)


def test_non_leaf_grad_only_with_retain_grad():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    h = y * 2
    (h * h).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), 8 * y.data)
    assert h.grad is None


def test_integer_outputs_are_not_differentiable():
    x = nnx.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert values.requires_grad and not indices.requires_grad
    assert indices.dtype == np.int64
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1], [1, 0]])
    assert not (x > 2).requires_grad and (x > 2).dtype == np.bool_
    assert not x.argmax(1).requires_grad


def test_full_max_and_min_share_the_gradient_between_ties():
    x = nnx.tensor([1.0, 3.0, 3.0, -2.0], requires_grad=True)
    (x.max() + 2 * x.min()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0.5, 0.5, 2])
    torch = pytest.importorskip("torch")
    xt = torch.tensor([1.0, 3.0, 3.0, -2.0], requires_grad=True)
    (xt.max() + 2 * xt.min()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


def test_autograd_grad_leaves_dot_grad_alone():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    w = nnx.tensor([3.0, 4.0], requires_grad=True)
    y = x * w
    h = y.exp()
    gx, gy = nnx.autograd.grad(h.sum(), [x, y])
    np.testing.assert_allclose(gx.numpy(), (np.exp([3.0, 8.0]) * [3, 4]).astype(np.float32))
    np.testing.assert_allclose(gy.numpy(), np.exp([3.0, 8.0]).astype(np.float32))
    assert x.grad is None and w.grad is None
    unused = nnx.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        nnx.autograd.grad((x * 2).sum(), [unused])
    assert nnx.autograd.grad((x * 2).sum(), [unused], allow_unused=True) == (None,)


def test_deep_graph_does_not_recurse():
    x = nnx.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1e-3
    y.sum().backward()
    assert x.grad.item() == 1.0


class Scale(Function):
    """y = k * x with k a plain Python argument; records what it was told."""

    log = []

    @staticmethod
    def forward(ctx, x, k):
        Scale.log.append(ctx.needs_input_grad)
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x.sum()

    @staticmethod
    def backward(ctx, g):
        return np.ones(7)


class TooMany(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1

    @staticmethod
    def backward(ctx, g):
        return g, g


def test_custom_function_contract():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    Scale.log.clear()
    y = Scale.apply(x, 5.0)
    assert repr(y.grad_fn) == "<ScaleBackward>"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5, 5])
    Scale.apply(nnx.tensor([1.0]), 2.0)
    assert Scale.log == [(True, False), (False, False)]
    with pytest.raises(RuntimeError, match=r"WrongShape.backward returned a gradient of shape "
                                           r"\(7,\) for argument 0, whose shape is \(2,\)"):
        WrongShape.apply(x).backward()
    with pytest.raises(RuntimeError, match="returned 2 gradients, expected 1"):
        TooMany.apply(x).sum().backward()


def test_in_place_ops_refuse_tensors_that_require_grad():
    w = nnx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w -= 1.0
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 5.0
    acc = nnx.zeros(2)
    with pytest.raises(RuntimeError, match="in-place"):
        acc += w * 2
    with nnx.no_grad():
        w -= 0.5 * nnx.tensor([2.0, 2.0])
        w[1] = 7.0
    np.testing.assert_array_equal(w.numpy() if not w.requires_grad else w.detach().numpy(),
                                  [0.0, 7.0])
    assert w.is_leaf and w.requires_grad
