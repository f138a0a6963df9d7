"""float64 finite-difference checks of every differentiable op and functional, and of the checker
itself (it must reject a wrong gradient)."""

import numpy as np
import pytest

import nnx
import nnx.nn.functional as F
from nnx.autograd import Function
from nnx.testing import GradcheckError, gradcheck


def leaf(*shape, seed=0, low=None, high=None):
    rng = np.random.default_rng(seed)
    if low is not None:
        data = rng.uniform(low, high, shape)
    else:
        data = rng.standard_normal(shape)
    return nnx.tensor(data, requires_grad=True)


def spread(*shape, seed=0):
    """Values at least 0.1 apart (shuffled), so max/min/relu/abs/clamp stay away from ties and
    kinks by far more than the finite-difference step."""
    n = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(n) * 0.1 - 0.05 * n + 0.03
    return nnx.tensor(values.reshape(shape), requires_grad=True)


# ---------------------------------------------------------------------------------------------
# Arithmetic with broadcasting


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)),
                                    ((3, 1), (1, 4)), ((), (2, 3))])
def test_binary_broadcasting(op, shapes):
    a = leaf(*shapes[0], seed=1)
    b = leaf(*shapes[1], seed=2, low=0.5, high=2.0) if op == "div" else leaf(*shapes[1], seed=2)
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
          "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    assert gradcheck(fn, (a, b))


def test_scalar_operands_and_reflected():
    x = leaf(3, 2, low=0.5, high=2.0)
    assert gradcheck(lambda t: 2.0 - t, x)
    assert gradcheck(lambda t: 3.0 / t, x)
    assert gradcheck(lambda t: 1.5 * t + 2, x)
    assert gradcheck(lambda t: -t, x)
    assert gradcheck(lambda t: 2.0 ** t, x)


def test_pow():
    x = leaf(2, 3, low=0.5, high=2.0)
    e = leaf(2, 3, seed=3, low=-1.0, high=2.0)
    assert gradcheck(lambda t: t ** 3, x)
    assert gradcheck(lambda t: t ** 0.5, x)
    assert gradcheck(lambda t: t ** -1.5, x)
    assert gradcheck(lambda a, b: a ** b, (x, e))


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs"])
def test_unary(name):
    x = leaf(3, 4, low=0.2, high=3.0) if name in ("log", "sqrt") else spread(3, 4)
    assert gradcheck(lambda t: getattr(t, name)(), x)


def test_clamp_away_from_bounds():
    x = spread(4, 5)  # values in [-0.97, 0.93], none within 0.03 of a bound
    assert gradcheck(lambda t: t.clamp(-0.5, 0.4), x)
    assert gradcheck(lambda t: t.clamp(min=0.0), x)
    assert gradcheck(lambda t: t.clamp(max=0.0), x)


def test_where():
    a, b = leaf(3, 4, seed=1), leaf(4, seed=2)
    cond = nnx.tensor(np.random.default_rng(0).random((3, 4)) > 0.5)
    assert gradcheck(lambda x, y: nnx.where(cond, x, y), (a, b))


# ---------------------------------------------------------------------------------------------
# Reductions


@pytest.mark.parametrize("name", ["sum", "mean"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), ((0, 2), False),
                                         (-1, False)])
def test_sum_mean(name, dim, keepdim):
    x = leaf(2, 3, 4)
    assert gradcheck(lambda t: getattr(t, name)(dim=dim, keepdim=keepdim), x)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min(name):
    x = spread(3, 4, 2)
    assert gradcheck(lambda t: getattr(t, name)(), x)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            assert gradcheck(lambda t: getattr(t, name)(dim, keepdim).values, x)
    # Both outputs: the int64 indices are simply not differentiated.
    assert gradcheck(lambda t: tuple(getattr(t, name)(1)), x)


# ---------------------------------------------------------------------------------------------
# Shapes, indexing, joining


def test_shape_ops():
    x = leaf(2, 3, 4)
    assert gradcheck(lambda t: t.reshape(4, 6) * 2, x)
    assert gradcheck(lambda t: t.view(-1), x)
    assert gradcheck(lambda t: t.permute(2, 0, 1), x)
    assert gradcheck(lambda t: t.transpose(0, 2), x)
    assert gradcheck(lambda t: t.flatten(1), x)
    assert gradcheck(lambda t: t.unsqueeze(1).squeeze(), x)
    assert gradcheck(lambda t: t[0].T, x)


def test_indexing_basic_and_advanced():
    x = leaf(4, 5)
    assert gradcheck(lambda t: t[1:3, ::2], x)
    assert gradcheck(lambda t: t[..., -1], x)
    assert gradcheck(lambda t: t[None, 2], x)
    # Repeated rows and elements: their gradients must add up.
    rows = nnx.tensor([0, 2, 2, 3, 0])
    assert gradcheck(lambda t: t[rows], x)
    assert gradcheck(lambda t: t[[1, 1, 1], [4, 4, 0]], x)
    assert gradcheck(lambda t: t[:, np.array([3, 3, 1])], x)
    mask = nnx.tensor(np.arange(20).reshape(4, 5) % 3 == 0)
    assert gradcheck(lambda t: t[mask], x)


def test_cat_stack():
    a, b, c = leaf(2, 3, seed=1), leaf(1, 3, seed=2), leaf(2, 3, seed=3)
    assert gradcheck(lambda x, y: nnx.cat([x, y], 0), (a, b))
    assert gradcheck(lambda x, y: nnx.cat([x, y, x], dim=-1), (a, c))
    assert gradcheck(lambda x, y: nnx.stack([x, y], 1), (a, c))
    assert gradcheck(lambda x, y: nnx.stack([x, y, x]), (a, c))


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)),
                                   ((4,), (4,)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (3, 4, 2)),
                                   ((4,), (2, 4, 3))])
def test_matmul(sa, sb):
    assert gradcheck(lambda x, y: x @ y, (leaf(*sa, seed=1), leaf(*sb, seed=2)))


def test_to_and_clone():
    x = leaf(3, 2)
    assert gradcheck(lambda t: t.clone() * t.to(np.float64), x)


# ---------------------------------------------------------------------------------------------
# Functional


@pytest.mark.parametrize("fn", [F.sigmoid, F.tanh, F.relu, F.softplus, F.hardsigmoid,
                                lambda t: F.leaky_relu(t, 0.2), lambda t: F.elu(t, 0.7)],
                         ids=["sigmoid", "tanh", "relu", "softplus", "hardsigmoid", "leaky_relu",
                              "elu"])
def test_activations(fn):
    x = nnx.tensor(spread(4, 6).data * 8, requires_grad=True)  # reaches both hardsigmoid kinks
    assert gradcheck(fn, x)


def test_softplus_large_inputs():
    x = nnx.tensor(np.array([-30.0, -1.0, 0.5, 19.0, 25.0]), requires_grad=True)
    assert gradcheck(F.softplus, x)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax(fn, dim):
    assert gradcheck(lambda t: fn(t, dim), leaf(3, 4, 2))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_shape", [(5, 3), (2, 2, 3), (3,)])
def test_linear(bias, in_shape):
    x, w = leaf(*in_shape, seed=1), leaf(4, 3, seed=2)
    if bias:
        assert gradcheck(F.linear, (x, w, leaf(4, seed=3)))
    else:
        assert gradcheck(F.linear, (x, w))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_fused_relu(bias):
    # Models call it where a ReLU follows a linear layer: the same values and gradients as the
    # two ops, the mask applied to the output gradient inside the layer's backward.
    x, w = leaf(6, 3, seed=1), leaf(4, 3, seed=2)
    args = (x, w, leaf(4, seed=3)) if bias else (x, w)
    y = F._linear(*args, relu=True)
    assert (y.data >= 0).all() and (y.data == 0).any()
    np.testing.assert_array_equal(y.data, F.relu(F.linear(*args)).data)
    assert gradcheck(lambda *a: F._linear(*a, relu=True), args)


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, smoothing):
    x = leaf(5, 4)
    t = nnx.tensor([0, 3, 3, 1, 2])
    assert gradcheck(lambda z: F.cross_entropy(z, t, reduction, smoothing), x)
    probs = nnx.tensor(np.random.default_rng(1).dirichlet(np.ones(4), 5))
    assert gradcheck(lambda z: F.cross_entropy(z, probs, reduction, smoothing), x)


def test_cross_entropy_spatial_and_single():
    x = leaf(2, 3, 2, 2)
    t = nnx.tensor(np.random.default_rng(1).integers(0, 3, (2, 2, 2)))
    assert gradcheck(lambda z: F.cross_entropy(z, t, reduction="none"), x)
    assert gradcheck(lambda z: F.cross_entropy(z, nnx.tensor(2)), leaf(4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    t = nnx.tensor([1, 0, 1, 2])
    assert gradcheck(lambda z: F.nll_loss(F.log_softmax(z), t, reduction), leaf(4, 3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits],
                         ids=["mse", "l1", "bce"])
def test_elementwise_losses(loss, reduction):
    x = spread(3, 4)
    target = leaf(3, 4, seed=5, low=0.0, high=1.0)  # differentiable target too
    assert gradcheck(lambda a, b: loss(a, b, reduction), (x, target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_multiclass_hinge(reduction, margin):
    x = spread(5, 4)  # scores 0.1 apart: no margin sits exactly at a kink
    t = nnx.tensor([0, 3, 1, 1, 2])
    assert gradcheck(lambda z: F.multiclass_hinge_loss(z, t, margin, reduction), x)


def test_dropout_with_fixed_mask():
    x = leaf(4, 5)

    def fn(t):
        nnx.manual_seed(3)  # the same mask on every evaluation
        return F.dropout(t, 0.4)

    assert gradcheck(fn, x)


def test_composite_mlp():
    x, w1, b1, w2 = leaf(6, 3, seed=1), leaf(5, 3, seed=2), leaf(5, seed=3), leaf(2, 5, seed=4)
    t = nnx.tensor([0, 1, 1, 0, 1, 0])
    assert gradcheck(lambda *p: F.cross_entropy(F.linear(F.tanh(F.linear(p[0], p[1], p[2])),
                                                         p[3]), t), (x, w1, b1, w2))


# ---------------------------------------------------------------------------------------------
# The checker itself


class WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2.1 * x * g  # off by 5%


class RightSquare(WrongSquare):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_gradcheck_fails_on_wrong_gradient():
    x = leaf(3, 2, low=0.5, high=1.0)
    assert gradcheck(RightSquare.apply, x)
    with pytest.raises(GradcheckError, match=r"input 0, element \(\d, \d\): analytic .* vs "
                                             r"numerical"):
        gradcheck(WrongSquare.apply, x)
    assert gradcheck(WrongSquare.apply, x, raise_exception=False) is False
    # GradcheckError is an AssertionError, so plain `assert`-style handlers catch it too.
    with pytest.raises(AssertionError):
        gradcheck(lambda t: WrongSquare.apply(t).sum() * 1.0, leaf(40, low=0.5, high=1.0))


def test_gradcheck_fails_on_wrong_gradient_through_random_projection():
    # 30 outputs: above the full-Jacobian limit, so the projection path is the one tested.
    x = leaf(30, low=0.5, high=1.0)
    with pytest.raises(GradcheckError, match="random projection"):
        gradcheck(WrongSquare.apply, x)


def test_gradcheck_rejects_float32():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2, nnx.randn(3, requires_grad=True))
