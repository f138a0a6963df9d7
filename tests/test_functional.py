"""nnx.nn.functional against plain numpy formulas and against PyTorch, plus argument errors."""

import numpy as np
import pytest

import nnx
import nnx.nn.functional as F

RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 5)) * 3
LABELS = np.array([0, 4, 2, 2, 1, 3])


def sm(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


NUMPY_ACTIVATIONS = {
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (F.tanh, np.tanh),
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "elu": (lambda t: F.elu(t, 0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x))),
    "hardsigmoid": (F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
}


@pytest.mark.parametrize("name", NUMPY_ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_match_numpy(name, dtype):
    fn, ref = NUMPY_ACTIVATIONS[name]
    y = fn(nnx.tensor(X.astype(dtype)))
    assert y.dtype == dtype and y.shape == X.shape
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.numpy(), ref(X), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "softplus"])
def test_activations_keep_a_scalar_a_scalar(name):
    # A 0-d input (a single neuron's pre-activation) gives a 0-d output and a 0-d gradient.
    x = nnx.tensor(0.5, requires_grad=True)
    y = getattr(F, name)(x)
    y.backward()
    assert y.shape == () and x.grad.shape == ()


def test_tensor_methods_call_the_functionals():
    t = nnx.tensor(X)
    np.testing.assert_array_equal(t.relu().numpy(), F.relu(t).numpy())
    np.testing.assert_array_equal(t.sigmoid().numpy(), F.sigmoid(t).numpy())
    np.testing.assert_array_equal(t.tanh().numpy(), F.tanh(t).numpy())
    np.testing.assert_array_equal(t.softmax(0).numpy(), F.softmax(t, 0).numpy())
    np.testing.assert_array_equal(t.log_softmax(1).numpy(), F.log_softmax(t, 1).numpy())


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_matches_numpy(dim):
    x3 = RNG.standard_normal((3, 4, 5)) * 10
    t = nnx.tensor(x3)
    np.testing.assert_allclose(F.softmax(t, dim).numpy(), sm(x3, dim), rtol=1e-12)
    z = x3 - x3.max(axis=dim, keepdims=True)
    log_sm = z - np.log(np.exp(z).sum(axis=dim, keepdims=True))
    np.testing.assert_allclose(F.log_softmax(t, dim).numpy(), log_sm, rtol=1e-12, atol=1e-14)
    big = nnx.tensor(np.array([[1000.0, 0.0, -1000.0]], np.float32))  # no overflow
    assert np.isfinite(F.log_softmax(big).numpy()).all()


def test_linear_matches_numpy_and_uses_one_gemm(monkeypatch):
    x, w, b = RNG.standard_normal((4, 3)), RNG.standard_normal((2, 3)), RNG.standard_normal(2)
    calls = []
    real = F.gemm

    def spy(a, bb, *args, **kwargs):
        calls.append((a, bb, kwargs))
        return real(a, bb, *args, **kwargs)

    monkeypatch.setattr(F, "gemm", spy)
    tx, tw, tb = (nnx.tensor(v, requires_grad=True) for v in (x, w, b))
    y = F.linear(tx, tw, tb)
    np.testing.assert_allclose(y.detach().numpy(), x @ w.T + b, rtol=1e-12)
    assert len(calls) == 1 and calls[0][2]["trans_b"] and calls[0][2]["bias"] is tb.data
    assert calls[0][1] is tw.data                      # weight read in place, not transposed
    g = RNG.standard_normal((4, 2))
    y.backward(g)
    assert len(calls) == 3
    assert all(np.shares_memory(arr, tw.data) or np.shares_memory(arr, tx.data)
               for arr in (calls[1][1], calls[2][1]))  # no transposed copies
    np.testing.assert_allclose(tx.grad.numpy(), g @ w, rtol=1e-12)
    np.testing.assert_allclose(tw.grad.numpy(), g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), g.sum(0), rtol=1e-12)
    assert F.linear(nnx.tensor(RNG.standard_normal((2, 5, 3))), tw).shape == (2, 5, 2)


def ce_numpy(x, t, smoothing=0.0):
    logp = np.log(sm(x))
    nll = -logp[np.arange(len(t)), t]
    return (1 - smoothing) * nll + smoothing * (-logp.mean(axis=1))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_numpy(smoothing):
    t = nnx.tensor(LABELS)
    per = ce_numpy(X, LABELS, smoothing)
    x = nnx.tensor(X)
    np.testing.assert_allclose(F.cross_entropy(x, t, "none", smoothing).numpy(), per, rtol=1e-10)
    np.testing.assert_allclose(F.cross_entropy(x, t, "sum", smoothing).item(), per.sum(),
                               rtol=1e-10)
    np.testing.assert_allclose(F.cross_entropy(x, t, label_smoothing=smoothing).item(),
                               per.mean(), rtol=1e-10)
    onehot = np.eye(5)[LABELS]
    np.testing.assert_allclose(
        F.cross_entropy(x, nnx.tensor(onehot), label_smoothing=smoothing).item(), per.mean(),
        rtol=1e-10)
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x), t).item(),
                               ce_numpy(X, LABELS).mean(), rtol=1e-10)


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    x = nnx.tensor(X, requires_grad=True)
    F.cross_entropy(x, nnx.tensor(LABELS)).backward()
    np.testing.assert_allclose(x.grad.numpy(), (sm(X) - np.eye(5)[LABELS]) / 6, rtol=1e-10)


def test_simple_losses_match_numpy():
    y = RNG.uniform(0, 1, X.shape)
    x = nnx.tensor(X)
    np.testing.assert_allclose(F.mse_loss(x, nnx.tensor(y)).item(), ((X - y) ** 2).mean())
    np.testing.assert_allclose(F.l1_loss(x, nnx.tensor(y), "sum").item(), np.abs(X - y).sum())
    s = 1 / (1 + np.exp(-X))
    bce = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(x, nnx.tensor(y), "none").numpy(), bce, rtol=1e-9)


def test_multiclass_hinge_is_weston_watkins_summed_over_classes():
    want = []
    for scores, y in zip(X, LABELS):
        want.append(sum(max(0.0, scores[j] - scores[y] + 1.0) for j in range(5) if j != y))
    x = nnx.tensor(X, requires_grad=True)
    loss = F.multiclass_hinge_loss(x, nnx.tensor(LABELS))
    np.testing.assert_allclose(loss.item(), np.mean(want), rtol=1e-12)  # not divided by C
    loss.backward()
    active = (X - X[np.arange(6), LABELS][:, None] + 1 > 0).astype(float)
    active[np.arange(6), LABELS] = 0
    active[np.arange(6), LABELS] = -active.sum(1)
    np.testing.assert_allclose(x.grad.numpy(), active / 6)


# ---------------------------------------------------------------------------------------------
# Dropout


def test_dropout_is_inverted_and_reproducible():
    x = nnx.ones(200_000, requires_grad=True)
    nnx.manual_seed(5)
    y = F.dropout(x, 0.3)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.005
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())  # gradient = mask
    nnx.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.3).detach().numpy(), y.detach().numpy())


def test_dropout_edge_probabilities():
    x = nnx.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    z = F.dropout(x, 1.0)
    assert not z.detach().numpy().any() and np.isfinite(z.detach().numpy()).all()
    z.sum().backward()
    assert not x.grad.numpy().any()
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


# ---------------------------------------------------------------------------------------------
# Errors


def test_loss_argument_errors():
    x = nnx.tensor(X)
    with pytest.raises(TypeError, match="integer .*class indices, got dtype float32"):
        F.cross_entropy(x, nnx.tensor([0.0, 1, 2, 3, 4, 0]))
    with pytest.raises(IndexError, match=r"class index 7 at position \(2,\).*5 classes"):
        F.cross_entropy(x, nnx.tensor([0, 1, 7, 3, 4, 0]))
    with pytest.raises(IndexError, match="class index -1"):
        F.multiclass_hinge_loss(x, nnx.tensor([0, 1, 2, -1, 4, 0]))
    with pytest.raises(ValueError, match=r"target shape \(5,\) does not match.*\(6,\)"):
        F.cross_entropy(x, nnx.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"input's shape \(6, 5\), got \(6, 4\)"):
        F.cross_entropy(x, nnx.zeros(6, 4))
    with pytest.raises(ValueError, match=r"input shape \(6, 5\) and target shape \(6,\) differ"):
        F.mse_loss(x, nnx.zeros(6))
    for loss in (F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits):
        with pytest.raises(ValueError, match="reduction must be one of"):
            loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of .* got 'batchmean'"):
        F.cross_entropy(x, nnx.tensor(LABELS), reduction="batchmean")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, nnx.tensor(LABELS), label_smoothing=1.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.relu(nnx.tensor([1, 2]))


def test_linear_argument_errors():
    with pytest.raises(ValueError, match=r"input has shape \(4, 3\) but weight \(2, 5\)"):
        F.linear(nnx.zeros(4, 3), nnx.zeros(2, 5))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(3,\)"):
        F.linear(nnx.zeros(4, 3), nnx.zeros(2, 3), nnx.zeros(3))
    with pytest.raises(TypeError, match="input is float32 but weight is float64"):
        F.linear(nnx.zeros(4, 3), nnx.tensor(np.zeros((2, 3))))


# ---------------------------------------------------------------------------------------------
# PyTorch parity (values and gradients, float64)


def both(fn_nnx, fn_torch, *arrays, grad_seed=1, rtol=1e-9):
    """Run the same computation in nnx and torch, compare outputs and input gradients."""
    torch = pytest.importorskip("torch")
    tn = [nnx.tensor(a, requires_grad=True) for a in arrays]
    tt = [torch.tensor(a, requires_grad=True) for a in arrays]
    yn, yt = fn_nnx(*tn), fn_torch(*tt)
    g = np.random.default_rng(grad_seed).standard_normal(yn.shape)
    yn.backward(nnx.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(yn.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(tn, tt):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=1e-12)


TORCH_ACTIVATIONS = ["sigmoid", "tanh", "relu", "softplus", "hardsigmoid"]


@pytest.mark.parametrize("name", TORCH_ACTIVATIONS)
def test_activations_match_torch(name):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((7, 9)) * 5
    # PyTorch's hardsigmoid backward multiplies by the float32 constant 1.0f / 6 even in float64.
    rtol = 1e-7 if name == "hardsigmoid" else 1e-9
    both(getattr(F, name), getattr(torch.nn.functional, name), x, rtol=rtol)


def test_parametrised_activations_match_torch():
    tf = pytest.importorskip("torch").nn.functional
    x = RNG.standard_normal((7, 9)) * 5
    both(lambda t: F.leaky_relu(t, 0.2), lambda t: tf.leaky_relu(t, 0.2), x)
    both(lambda t: F.elu(t, 0.7), lambda t: tf.elu(t, 0.7), x)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_softmax_matches_torch(dim):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 4, 5)) * 4
    both(lambda t: F.softmax(t, dim), lambda t: torch.softmax(t, dim), x)
    both(lambda t: F.log_softmax(t, dim), lambda t: torch.log_softmax(t, dim), x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
def test_cross_entropy_matches_torch(reduction, smoothing):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    both(lambda t: F.cross_entropy(t, nnx.tensor(LABELS), reduction, smoothing),
         lambda t: tf.cross_entropy(t, torch.tensor(LABELS), reduction=reduction,
                                    label_smoothing=smoothing), X)
    probs = RNG.dirichlet(np.ones(5), 6)
    both(lambda t: F.cross_entropy(t, nnx.tensor(probs), reduction, smoothing),
         lambda t: tf.cross_entropy(t, torch.tensor(probs), reduction=reduction,
                                    label_smoothing=smoothing), X)
    x4 = RNG.standard_normal((2, 5, 3, 2))
    t4 = RNG.integers(0, 5, (2, 3, 2))
    both(lambda t: F.cross_entropy(t, nnx.tensor(t4), reduction, smoothing),
         lambda t: tf.cross_entropy(t, torch.tensor(t4), reduction=reduction,
                                    label_smoothing=smoothing), x4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_torch(reduction):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    y = RNG.uniform(0, 1, X.shape)
    for ours, theirs in [(F.mse_loss, tf.mse_loss), (F.l1_loss, tf.l1_loss),
                         (F.binary_cross_entropy_with_logits,
                          tf.binary_cross_entropy_with_logits)]:
        both(lambda a, b: ours(a, b, reduction), lambda a, b: theirs(a, b, reduction=reduction),
             X, y)
    both(lambda t: F.nll_loss(t, nnx.tensor(LABELS), reduction),
         lambda t: tf.nll_loss(t, torch.tensor(LABELS), reduction=reduction), X)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_multiclass_hinge_matches_torch_times_classes(reduction, margin):
    torch = pytest.importorskip("torch")
    classes = X.shape[1]
    both(lambda t: F.multiclass_hinge_loss(t, nnx.tensor(LABELS), margin, reduction),
         lambda t: classes * torch.nn.functional.multi_margin_loss(
             t, torch.tensor(LABELS), p=1, margin=margin, reduction=reduction), X)


def test_linear_and_ops_match_torch():
    torch = pytest.importorskip("torch")
    x, w, b = RNG.standard_normal((2, 4, 3)), RNG.standard_normal((5, 3)), RNG.standard_normal(5)
    both(F.linear, torch.nn.functional.linear, x, w, b)
    a, c = RNG.uniform(0.5, 2, (3, 4)), RNG.standard_normal((4,))
    both(lambda p, q: (p * q - q / p).exp().sum(1) ** 2,
         lambda p, q: (p * q - q / p).exp().sum(1) ** 2, a, c)
    both(lambda p: p[[0, 2, 2]].max(1).values * p.max(),
         lambda p: p[[0, 2, 2]].max(1).values * p.max(), a)
    both(lambda p, q: p @ q, lambda p, q: p @ q, RNG.standard_normal((2, 3, 4)), c)
