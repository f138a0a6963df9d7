"""Modules: registration, state dicts, modes, repr, layers, losses, initialisation, clipping."""

import math

import numpy as np
import pytest

import nnx
import nnx.io
from nnx.nn import functional as F
from nnx.nn import init
from nnx.nn.modules import (
    ELU,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Hardsigmoid,
    Identity,
    L1Loss,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Module,
    ModuleList,
    MSELoss,
    MultiClassHingeLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from nnx.nn.parameter import Parameter
from nnx.nn.utils import clip_grad_norm_, clip_grad_value_
from nnx.tensor import Tensor


def mlp():
    return Sequential(Flatten(), Linear(12, 8), ReLU(), Dropout(0.5), Linear(8, 3))


class Net(Module):
    def __init__(self):
        super().__init__()
        self.body = mlp()
        self.scale = Parameter(np.ones(3, np.float32))
        self.register_buffer("steps", np.zeros((), np.int64))
        self.register_buffer("cache", np.zeros(2, np.float32), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.body(x) * self.scale


# ---------------------------------------------------------------------------------------------
# Registration and traversal

def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.1.weight", "body.1.bias", "body.4.weight", "body.4.bias"]
    assert len(list(net.parameters())) == 5
    assert [type(c).__name__ for c in net.children()] == ["Sequential"]
    assert len(list(net.modules())) == 7
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache"]
    assert net.note == "plain attribute" and "note" not in net._parameters
    assert all(isinstance(p, Tensor) and p.requires_grad for p in net.parameters())
    assert net.num_parameters() == 12 * 8 + 8 + 8 * 3 + 3 + 3
    # Reassignment replaces; None keeps the slot; deleting unregisters.
    net.scale = None
    assert "scale" not in [n for n, _ in net.named_parameters()]
    with pytest.raises(TypeError, match="Parameter or None"):
        net.scale = np.ones(3)
    del net.body
    assert list(net.parameters()) == []


def test_shared_parameters_come_once_and_assign_before_init_fails():
    lin = Linear(3, 3)
    seq = Sequential(lin, ReLU(), lin)
    assert len(list(seq.parameters())) == 2

    class Bad(Module):
        def __init__(self):
            self.w = Parameter(np.ones(2, np.float32))

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Bad()


def test_containers():
    seq = Sequential(Linear(4, 4), ReLU())
    seq.append(Linear(4, 2))
    assert len(seq) == 3 and isinstance(seq[-1], Linear) and isinstance(seq[1], ReLU)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert isinstance(seq[:2], Sequential) and len(seq[:2]) == 2
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    with pytest.raises(TypeError, match="Module"):
        seq.append(lambda x: x)
    seq.insert(0, Identity())
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Identity", "ReLU", "Linear"]
    assert list(seq.state_dict()) == ["2.weight", "2.bias"]

    class Stack(Module):
        def __init__(self):
            super().__init__()
            self.layers = ModuleList([Linear(2, 2) for _ in range(3)])

    s = Stack()
    assert len(list(s.parameters())) == 6 and len(s.layers) == 3
    s.layers += [Linear(2, 1)]
    assert [n for n, _ in s.named_parameters()][-1] == "layers.3.bias"


def test_repr_matches_torch_layout():
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 10))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=256, out_features=10, bias=True)\n"
        ")")
    assert repr(Net()).startswith("Net(\n  (body): Sequential(\n    (0): Flatten(")
    assert repr(Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
    assert repr(Dropout(0.1)) == "Dropout(p=0.1)"


def test_repr_matches_torch_exactly():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                             torch.nn.Linear(256, 10),
                             torch.nn.LeakyReLU(0.1))
    m = Sequential(Flatten(), Linear(784, 256), ReLU(), Linear(256, 10), LeakyReLU(0.1))
    assert repr(m) == repr(tm)


# ---------------------------------------------------------------------------------------------
# State dicts

def test_state_dict_round_trip_through_a_file(tmp_path):
    nnx.manual_seed(1)
    a = Net()
    a.steps[...] = 7
    sd = a.state_dict()
    assert list(sd) == ["scale", "steps", "body.1.weight", "body.1.bias", "body.4.weight",
                        "body.4.bias"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["scale"][...] = 5  # a copy: the model is unchanged
    assert a.scale.data[0] == 1
    nnx.io.save(a.state_dict(), tmp_path / "m.npz")
    b = Net()
    result = b.load_state_dict(nnx.io.load(tmp_path / "m.npz"))
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    a.eval()
    b.eval()
    x = Tensor(np.random.default_rng(0).standard_normal((4, 12)).astype(np.float32))
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_errors_list_every_problem():
    net = Net()
    sd = net.state_dict()
    before = net.state_dict()
    del sd["body.1.bias"]
    sd["body.9.weight"] = np.zeros(3)
    sd["body.4.weight"] = np.zeros((5, 8), np.float32)
    sd["scale"] = np.full(3, 2.0)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert "Missing key(s) in state_dict: 'body.1.bias'" in msg
    assert "Unexpected key(s) in state_dict: 'body.9.weight'" in msg
    assert "size mismatch for body.4.weight" in msg and "(5, 8)" in msg and "(3, 8)" in msg
    # Nothing was copied, not even the valid entries.
    np.testing.assert_array_equal(net.scale.data, before["scale"])
    del sd["body.4.weight"]
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["body.1.bias", "body.4.weight"] and unexpected == ["body.9.weight"]
    np.testing.assert_array_equal(net.scale.data, 2.0)
    assert net.scale.data.dtype == np.float32
    with pytest.raises(RuntimeError, match="size mismatch for scale"):
        net.load_state_dict({"scale": np.ones(4)}, strict=False)


def test_load_state_dict_keeps_parameter_objects():
    lin = Linear(3, 2)
    w = lin.weight
    lin.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.ones(2)})
    assert lin.weight is w and np.all(w.data == 0) and w.data.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Modes, gradients, apply, dtype

def test_train_eval_and_dropout():
    net = Net()
    assert net.training and net.body[3].training
    assert net.eval() is net and not net.body[3].training
    drop = Dropout(0.25)
    x = Tensor(np.ones((200, 100), np.float32))
    nnx.manual_seed(0)
    y = drop(x).data
    zero = np.mean(y == 0)
    assert 0.23 < zero < 0.27
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).data, x.data)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="Dropout: p"):
            Dropout(p)


def test_zero_grad_apply_to():
    lin = Linear(4, 2)
    lin(Tensor(np.ones((3, 4), np.float32))).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(lin.weight.grad.data, 0)
    lin.zero_grad()
    assert lin.weight.grad is None
    seen = []
    Sequential(lin, ReLU()).apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Sequential"]
    w = lin.weight
    lin.double()
    assert lin.weight is w and w.dtype == np.float64


# ---------------------------------------------------------------------------------------------
# Layers and losses

def test_linear_matches_numpy():
    lin = Linear(5, 3)
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    expected = x.astype(np.float64) @ lin.weight.data.T.astype(np.float64) + lin.bias.data
    np.testing.assert_allclose(lin(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    nb = Linear(5, 3, bias=False)
    assert nb.bias is None and len(list(nb.parameters())) == 1
    np.testing.assert_allclose(nb(Tensor(x)).data, x @ nb.weight.data.T, rtol=1e-5, atol=1e-6)


def test_linear_default_init_bounds_and_seed():
    nnx.manual_seed(3)
    lin = Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for t in (lin.weight.data, lin.bias.data):
        assert np.abs(t).max() <= bound and np.abs(t).max() > 0.95 * bound
    assert abs(lin.weight.data.std() - bound / math.sqrt(3)) < 0.02 * bound
    nnx.manual_seed(3)
    np.testing.assert_array_equal(Linear(400, 300).weight.data, lin.weight.data)


def test_linear_default_init_matches_torch_distribution():
    # Both libraries draw weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Seeded, so the
    # check is deterministic; the tolerances are several standard errors of the sample std
    # (120,000 weights, 300 biases).
    torch = pytest.importorskip("torch")
    nnx.manual_seed(0)
    torch.manual_seed(0)
    t = torch.nn.Linear(400, 300)
    ours = Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for a, b, rtol in ((ours.weight.data, t.weight.detach().numpy(), 0.02),
                       (ours.bias.data, t.bias.detach().numpy(), 0.15)):
        for x in (a, b):
            assert np.abs(x).max() <= bound
            assert abs(x.std() - bound / math.sqrt(3)) < rtol * bound / math.sqrt(3)


def test_flatten_identity():
    x = Tensor(np.zeros((2, 3, 4, 5), np.float32))
    assert Flatten()(x).shape == (2, 60)
    assert Flatten(0, -1)(x).shape == (120,)
    assert Flatten(1, 2)(x).shape == (2, 12, 5)
    assert Identity(1, k=2)(x) is x
    with pytest.raises(ValueError, match="start_dim=3, end_dim=1"):
        Flatten(3, 1)(x)


ACTS = [(ReLU(), "relu", {}), (Sigmoid(), "sigmoid", {}), (Tanh(), "tanh", {}),
        (LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}), (ELU(0.7), "elu", {"alpha": 0.7}),
        (Softplus(), "softplus", {}), (Hardsigmoid(), "hardsigmoid", {}),
        (Softmax(dim=1), "softmax", {"dim": 1}), (LogSoftmax(dim=-1), "log_softmax", {"dim": -1})]


@pytest.mark.parametrize("module,name,kwargs", ACTS, ids=[a[1] for a in ACTS])
def test_activation_modules(module, name, kwargs):
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32) * 4
    expected = getattr(F, name)(Tensor(x), **kwargs).data
    np.testing.assert_array_equal(module(Tensor(x)).data, expected)
    torch = pytest.importorskip("torch")
    expected = getattr(torch.nn.functional, name)(torch.tensor(x), **kwargs).numpy()
    np.testing.assert_allclose(module(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_loss_modules_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 6)
    target = rng.standard_normal((6, 4)).astype(np.float32)
    binary = (rng.random((6, 4)) > 0.5).astype(np.float32)
    tl, tt, tb = torch.tensor(logits), torch.tensor(target), torch.tensor(binary)
    cases = [
        (CrossEntropyLoss(), labels, torch.nn.CrossEntropyLoss()(tl, torch.tensor(labels))),
        (CrossEntropyLoss(reduction="sum", label_smoothing=0.1), labels,
         torch.nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1)(tl,
                                                                         torch.tensor(labels))),
        (MSELoss(), target, torch.nn.MSELoss()(tl, tt)),
        (L1Loss(reduction="none"), target, torch.nn.L1Loss(reduction="none")(tl, tt)),
        (BCEWithLogitsLoss(), binary, torch.nn.BCEWithLogitsLoss()(tl, tb)),
    ]
    for module, t, expected in cases:
        np.testing.assert_allclose(module(Tensor(logits), Tensor(t)).data, expected.numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=repr(module))
    # Weston-Watkins hinge = torch's multi_margin_loss times the number of classes.
    hinge = MultiClassHingeLoss(margin=1.0)(Tensor(logits), Tensor(labels)).data
    ref = torch.nn.MultiMarginLoss()(tl, torch.tensor(labels)).numpy() * 4
    np.testing.assert_allclose(hinge, ref, rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(label_smoothing=1.5)


# ---------------------------------------------------------------------------------------------
# Initialisation

BIG = (1000, 500)  # fan_out = 1000, fan_in = 500


def _w(shape=BIG):
    return Tensor(np.zeros(shape, np.float32))


def test_init_statistics():
    nnx.manual_seed(0)
    cases = [
        (init.kaiming_normal_(_w(), nonlinearity="relu"), math.sqrt(2 / 500)),
        (init.kaiming_normal_(_w(), mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 1000)),
        (init.kaiming_uniform_(_w(), nonlinearity="relu"), math.sqrt(2 / 500)),
        (init.kaiming_normal_(_w(), nonlinearity="linear"), math.sqrt(1 / 500)),
        (init.xavier_uniform_(_w()), math.sqrt(2 / 1500)),
        (init.xavier_normal_(_w(), gain=2.0), 2 * math.sqrt(2 / 1500)),
        (init.normal_(_w(), 0, 0.01), 0.01),
        (init.uniform_(_w(), -3, 3), 3 / math.sqrt(3)),
    ]
    for t, std in cases:
        assert abs(t.data.std() - std) < 0.1 * std
        assert abs(t.data.mean()) < 0.05 * std
    bound = math.sqrt(6 / 500)
    w = init.kaiming_uniform_(_w(), nonlinearity="relu").data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    w = init.xavier_uniform_(_w()).data
    assert np.abs(w).max() <= math.sqrt(6 / 1500)
    assert abs(init.normal_(_w(), 5.0, 0.1).data.mean() - 5.0) < 0.01
    conv = init.kaiming_normal_(Tensor(np.zeros((64, 16, 5, 5), np.float32)),
                                nonlinearity="relu")
    assert abs(conv.data.std() - math.sqrt(2 / (16 * 25))) < 0.1 * math.sqrt(2 / 400)


def test_init_constants_gain_errors_and_no_graph():
    p = Parameter(np.ones((3, 2), np.float32))
    assert init.zeros_(p) is p and np.all(p.data == 0) and p.grad_fn is None
    assert np.all(init.ones_(p).data == 1) and np.all(init.constant_(p, 0.5).data == 0.5)
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("sigmoid") == 1
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(Tensor(np.zeros(5, np.float32)))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(_w(), mode="fan_avg")
    with pytest.raises(TypeError, match="floating-point"):
        init.normal_(Tensor(np.zeros(3, np.int64)))


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for args in [("linear",), ("relu",), ("tanh",), ("leaky_relu",), ("leaky_relu", 0.3),
                 ("selu",), ("conv2d",), ("sigmoid",)]:
        assert init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))


# ---------------------------------------------------------------------------------------------
# Gradient clipping

@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (4,), (2, 2)]]
    params = [Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = Tensor(g.copy())
    tparams = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(tparams, grads):
        p.grad = torch.tensor(g)
    total = clip_grad_norm_(params, 1.0, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 1.0, norm_type)
    assert total == pytest.approx(float(ttotal), rel=1e-5)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-5, atol=1e-7)
    # Already small enough: untouched.
    before = [p.grad.data.copy() for p in params]
    clip_grad_norm_(params, 100.0, norm_type)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.grad.data, b)


def test_clip_grad_value():
    p = Parameter(np.zeros(4, np.float32))
    p.grad = Tensor(np.array([-3, -0.5, 0.5, 3], np.float32))
    clip_grad_value_([p, Parameter(np.zeros(1, np.float32))], 1.0)
    np.testing.assert_array_equal(p.grad.data, [-1, -0.5, 0.5, 1])
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([p], -1.0)


def test_load_state_dict_invalidates_graphs_that_saved_the_parameters():
    # Loading overwrites parameters in place: a graph built before must not backpropagate
    # through the old values silently.
    import nnx
    from nnx import nn

    m = nn.Linear(3, 2)
    y = m(nnx.randn(4, 3)).sum()
    m.load_state_dict(m.state_dict())
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()
