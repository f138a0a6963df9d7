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


# ---------------------------------------------------------------------------------------------
# Version counters: an array saved for backward and changed in place afterwards


VIEWS = {
    "itself": lambda t: t,
    "detach": lambda t: t.detach(),
    "reshape": lambda t: t.reshape(2, 2),
    "view": lambda t: t.view(-1),
    "slice": lambda t: t[1:],
    "Tensor(t)": lambda t: nnx.Tensor(t),
}

CHANGES = {
    "add_": lambda t: t.add_(1.0),
    "sub_": lambda t: t.sub_(1.0),
    "mul_": lambda t: t.mul_(2.0),
    "div_": lambda t: t.div_(2.0),
    "+=": lambda t: t.__iadd__(1.0),
    "zero_": lambda t: t.zero_(),
    "fill_": lambda t: t.fill_(3.0),
    "copy_": lambda t: t.copy_(np.full(t.shape, 5, np.float32)),
    "normal_": lambda t: t.normal_(),
    "uniform_": lambda t: t.uniform_(),
    "setitem": lambda t: t.__setitem__(0, 9.0),
    "nn.init": lambda t: nnx.nn.init.constant_(t, 2.0),
}


def test_changing_a_saved_input_in_place_raises_in_backward():
    w = nnx.tensor([1.0, 2.0], requires_grad=True)
    x = nnx.tensor([3.0, 4.0])
    y = (w * x).sum()
    x += 10
    with pytest.raises(RuntimeError, match=r"Mul backward: an input of shape \(2,\) \(argument 1\) "
                                           r"was modified in place after it was used in the "
                                           r"forward pass \(version 0 -> 1\)"):
        y.backward()


def changed_in_place_then_backward(used_view, changed_view, change):
    x = nnx.tensor(np.arange(1.0, 5.0, dtype=np.float32))
    used = VIEWS[used_view](x)
    w = nnx.tensor(np.ones(used.shape, np.float32), requires_grad=True)
    y = (w * used).sum()
    CHANGES[change](VIEWS[changed_view](x))
    with pytest.raises(RuntimeError, match="Mul backward: .* modified in place"):
        y.backward()


@pytest.mark.parametrize("changed_view", VIEWS)
@pytest.mark.parametrize("used_view", ["itself", "reshape", "slice", "detach"])
def test_changes_through_any_view_are_seen(used_view, changed_view):
    changed_in_place_then_backward(used_view, changed_view, "add_")


@pytest.mark.parametrize("change", CHANGES)
def test_every_in_place_method_is_seen(change):
    changed_in_place_then_backward("reshape", "slice", change)


def test_optimizer_step_between_forward_and_backward_raises():
    w = nnx.tensor([1.0, 2.0], requires_grad=True)
    x = nnx.tensor([3.0, 4.0])
    for opt in (nnx.optim.SGD([w], lr=0.1), nnx.optim.Adam([w])):
        loss = (w * x).sum()
        loss.backward(retain_graph=True)
        version = w._version
        opt.step()
        assert w._version == version + 1
        with pytest.raises(RuntimeError, match=r"Mul backward: an input of shape \(2,\) "
                                               r"\(argument 0\) was modified in place"):
            loss.backward()


def test_changing_a_saved_output_in_place_raises():
    x = nnx.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()
    with nnx.no_grad():
        y.view(-1).add_(1.0)
    with pytest.raises(RuntimeError, match=r"Exp backward: an output of shape \(2,\)"):
        y.sum().backward()


def test_in_place_changes_that_backward_does_not_read_are_allowed():
    w = nnx.tensor([1.0, 2.0], requires_grad=True)
    x = nnx.tensor([3.0, 4.0])
    unrelated = nnx.tensor([0.0, 0.0])
    y = (w * x).sum() + (w + x).sum()  # Mul saves x; Add saves nothing
    unrelated += 1
    w_plus = nnx.tensor([1.0, 1.0])
    z = (w + w_plus).sum()
    w_plus.mul_(3.0)  # Add did not save it: its gradient does not depend on it
    y.backward()
    z.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [5.0, 6.0])
    # A fresh forward after the change records the new version.
    x += 1
    w.grad = None
    (w * x).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [4.0, 5.0])


def test_version_counter_is_shared_by_views_only():
    x = nnx.tensor([1.0, 2.0, 3.0, 4.0])
    views = [x.detach(), x.reshape(2, 2), x[1:], nnx.Tensor(x)]
    copies = [x.clone(), x.double(), x[[0, 1]], nnx.Tensor(x, dtype=np.float64)]
    x.add_(1.0)
    assert x._version == 1 and all(v._version == 1 for v in views)
    assert all(c._version == 0 for c in copies)
    views[1].zero_()
    assert x._version == 2
    x.data = np.zeros(4, np.float32)  # new storage, new counter
    assert x._version == 0 and views[0]._version == 2


# ---------------------------------------------------------------------------------------------
# Gradient buffers: taken without a copy when nothing else holds them


class FreshGradient(Function):
    made: list = []

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        out = np.full(g.shape, 3.0, g.dtype)
        FreshGradient.made.append(out)
        return out


class ReturnsSavedArray(Function):
    """A backward handing back an array kept from the forward (a precomputed gradient)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.full(x.shape, 2.0, x.dtype))
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        (precomputed,) = ctx.saved_tensors
        return precomputed


def test_a_fresh_gradient_becomes_grad_without_a_copy():
    FreshGradient.made.clear()
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    FreshGradient.apply(x).backward(np.ones(2, np.float32))
    assert x.grad.data is FreshGradient.made[0]
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3])


def test_shared_gradient_arrays_are_copied_into_aligned_buffers():
    a = nnx.tensor(np.ones(1000, np.float32), requires_grad=True)
    b = nnx.tensor(np.ones(1000, np.float32), requires_grad=True)
    ((a + b) * 2).sum().backward()  # Add hands the same array to both leaves
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert b.grad.data.ctypes.data % 64 == 0 or a.grad.data.ctypes.data % 64 == 0
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), np.full(1000, 2.0))
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    ((x + x) * 3).sum().backward()  # the same array delivered twice to one leaf
    np.testing.assert_array_equal(x.grad.numpy(), [6, 6])
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8, 8])
    # A pass-through gradient also reaching another node stays intact for that node.
    y = nnx.tensor([1.0, 2.0], requires_grad=True)
    z = y * 5
    (y + z).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [6, 6])


class SumSharingGradient(Function):
    """a + b, whose backward hands one fresh array to both arguments."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        shared = g.copy()
        return shared, shared


def test_a_gradient_sent_to_a_leaf_and_a_pending_node_is_not_changed_before_that_node_runs():
    # The backward order here: SumSharingGradient gives x its first gradient and (the same
    # array) to the Mul node making n, which still waits for n * 3; x * 4 then adds to x.grad.
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    n = x * 2
    ((n * 3 + x * 4) + SumSharingGradient.apply(x, n)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [13, 13])


def test_a_backward_returning_a_saved_array_does_not_give_it_away():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    y = ReturnsSavedArray.apply(x)
    for expected in (2, 4, 6):
        y.backward(np.ones(2, np.float32), retain_graph=True)
        np.testing.assert_array_equal(x.grad.numpy(), [expected, expected])
