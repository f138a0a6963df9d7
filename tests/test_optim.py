"""Optimizers and schedulers against plain-numpy formulas written here, and against torch."""

import math

import numpy as np
import pytest

import nnx.io
from nnx import optim
from nnx.nn.parameter import Parameter
from nnx.optim import lr_scheduler
from nnx.tensor import Tensor

K = 6


def _params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in [(3, 4), (4,)]]


def _grad_of(p: np.ndarray, k: int) -> np.ndarray:
    # Depends on the current parameter, so an error in one step shows in all later ones.
    noise = np.random.default_rng(100 + k + p.size).standard_normal(p.shape)
    return (0.5 * p + noise).astype(p.dtype)


def _set_grads(params, k):
    for p in params:
        p.grad = Tensor(_grad_of(p.data, k))


# ---------------------------------------------------------------------------------------------
# Reference formulas, one step on one array, written from the papers / torch docs.

def sgd_reference(p, g, state, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False):
    g = g + weight_decay * p
    if momentum:
        if "buf" not in state:
            state["buf"] = g.copy()
        else:
            state["buf"] = momentum * state["buf"] + (1 - dampening) * g
        g = g + momentum * state["buf"] if nesterov else state["buf"]
    return p - lr * g


def adam_reference(p, g, state, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   decoupled=False):
    b1, b2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.1, momentum=0.8, dampening=0.3),
    dict(lr=0.02, momentum=0.9, weight_decay=0.1, nesterov=True),
]
ADAM_CASES = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.3, betas=(0.5, 0.9))),
]


def _run_reference(kind, kwargs, arrays, steps):
    states = [{} for _ in arrays]
    trajectory = []
    for k in range(steps):
        new = []
        for p, s in zip(arrays, states):
            g = _grad_of(p, k)
            if kind == "SGD":
                new.append(sgd_reference(p, g, s, **kwargs))
            else:
                kw = dict(kwargs)
                if kind == "AdamW":
                    kw.setdefault("weight_decay", 1e-2)
                new.append(adam_reference(p, g, s, decoupled=kind == "AdamW", **kw))
        arrays = new
        trajectory.append([a.copy() for a in arrays])
    return trajectory


@pytest.mark.parametrize("kind,kwargs", [("SGD", c) for c in SGD_CASES] + ADAM_CASES)
def test_matches_numpy_formula_step_by_step(kind, kwargs):
    params = _params()
    expected = _run_reference(kind, kwargs, [p.data.copy() for p in params], K)
    opt = getattr(optim, kind)(params, **kwargs)
    for k in range(K):
        _set_grads(params, k)
        opt.step()
        for p, e in zip(params, expected[k]):
            np.testing.assert_allclose(p.data, e, rtol=1e-12, atol=1e-14, err_msg=f"step {k}")


@pytest.mark.parametrize("kind,kwargs", [("SGD", c) for c in SGD_CASES] + ADAM_CASES)
def test_matches_torch(kind, kwargs):
    torch = pytest.importorskip("torch")
    params = _params(np.float32)
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = getattr(optim, kind)(params, **kwargs)
    topt = getattr(torch.optim, kind)(tparams, **kwargs)
    for k in range(K):
        _set_grads(params, k)
        for tp, p in zip(tparams, params):
            tp.grad = torch.tensor(_grad_of(tp.detach().numpy(), k))
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=2e-5, atol=2e-6,
                                       err_msg=f"step {k}")


@pytest.mark.parametrize("kind,kwargs", [("SGD", SGD_CASES[2]), ("SGD", SGD_CASES[0])]
                         + ADAM_CASES[2:4])
def test_state_dict_round_trip_continues_identically(kind, kwargs, tmp_path):
    params = _params()
    opt = getattr(optim, kind)(params, **kwargs)
    for k in range(3):
        _set_grads(params, k)
        opt.step()
    nnx.io.save({"opt": opt.state_dict(), "params": [p.data for p in params]}, tmp_path / "o")
    loaded = nnx.io.load(tmp_path / "o")
    params2 = [Parameter(a) for a in loaded["params"]]
    opt2 = getattr(optim, kind)(params2, lr=123.0)  # hyper-parameters come from the state
    opt2.load_state_dict(loaded["opt"])
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    for k in range(3, 6):
        for ps in (params, params2):
            _set_grads(ps, k)
        opt.step()
        opt2.step()
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_snapshot_keyed_by_index():
    params = _params()
    opt = optim.Adam(params, lr=0.1)
    _set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1} and sd["param_groups"][0]["params"] == [0, 1]
    assert sd["state"][0]["step"] == 1
    before = sd["state"][0]["exp_avg"].copy()
    _set_grads(params, 1)
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)


def test_load_state_dict_mismatch_errors():
    opt = optim.SGD(_params(), lr=0.1, momentum=0.9)
    _set_grads(opt.param_groups[0]["params"], 0)
    opt.step()
    sd = opt.state_dict()
    other = optim.SGD(_params()[:1], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="1 in this optimizer"):
        other.load_state_dict(sd)
    sd["state"][0]["momentum_buffer"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        optim.SGD(_params(), lr=0.1, momentum=0.9).load_state_dict(sd)


def test_param_groups_with_different_lr():
    a, b = _params()
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["lr"] == 0.5
    ea = _run_reference("SGD", dict(lr=0.1), [a.data.copy()], K)
    eb = _run_reference("SGD", dict(lr=0.5, momentum=0.9), [b.data.copy()], K)
    for k in range(K):
        _set_grads([a, b], k)
        opt.step()
        np.testing.assert_allclose(a.data, ea[k][0], rtol=1e-12)
        np.testing.assert_allclose(b.data, eb[k][0], rtol=1e-12)


def test_add_param_group_and_duplicates():
    a, b = _params()
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        optim.SGD([{"params": [a], "momentun": 0.9}], lr=0.1)


def test_skips_parameters_without_grad_and_zero_grad():
    a, b = _params()
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = Tensor(np.ones_like(a.data))
    b_before = b.data.copy()
    opt.step()
    np.testing.assert_array_equal(b.data, b_before)
    assert b not in opt.state and opt.state[a]["step"] == 1
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.data, 0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-0.1), "invalid lr"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "invalid momentum"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "invalid weight_decay"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.Adam(p, lr=-1e-3), "invalid lr"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "index 0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "index 1"),
    (lambda p: optim.Adam(p, eps=-1e-8), "invalid eps"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "invalid weight_decay"),
    (lambda p: optim.SGD(p, lr=float("nan")), "invalid lr"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
])
def test_hyper_parameter_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make(_params())


def test_single_tensor_is_rejected():
    with pytest.raises(TypeError, match="single tensor"):
        optim.SGD(_params()[0], lr=0.1)


def test_a_module_instead_of_its_parameters_is_rejected_with_the_fix():
    from nnx.nn.modules import Linear, Sequential

    for model in (Linear(3, 2), Sequential(Linear(3, 2))):
        with pytest.raises(TypeError, match=r"got the module \w+; pass its parameters: "
                                            r"Adam\(model.parameters\(\), ...\)"):
            optim.Adam(model)


# ---------------------------------------------------------------------------------------------
# Schedulers

def _sched_lrs(make, epochs, lr=0.1):
    opt = optim.SGD(_params(), lr=lr)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [lrs[-1]]
    return lrs


SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5), lambda e: 0.1 * 0.5 ** (e // 3)),
    ("ExponentialLR", dict(gamma=0.9), lambda e: 0.1 * 0.9**e),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001),
     lambda e: 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 7)) / 2),
    ("LambdaLR", dict(lr_lambda=lambda e: 1 / (1 + e)), lambda e: 0.1 / (1 + e)),
]


@pytest.mark.parametrize("name,kwargs,closed", SCHEDULERS)
def test_scheduler_closed_form(name, kwargs, closed):
    lrs = _sched_lrs(lambda o: getattr(lr_scheduler, name)(o, **kwargs), 12)
    np.testing.assert_allclose(lrs, [closed(e) for e in range(13)], rtol=1e-12)


@pytest.mark.parametrize("name,kwargs,closed", SCHEDULERS)
def test_scheduler_matches_torch(name, kwargs, closed):
    torch = pytest.importorskip("torch")
    lrs = _sched_lrs(lambda o: getattr(lr_scheduler, name)(o, **kwargs), 12)
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    tlrs = [topt.param_groups[0]["lr"]]
    for _ in range(12):
        topt.step()
        tsched.step()
        tlrs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name,kwargs,closed", SCHEDULERS)
def test_scheduler_state_dict_resume(name, kwargs, closed, tmp_path):
    opt = optim.SGD(_params(), lr=0.1)
    sched = getattr(lr_scheduler, name)(opt, **kwargs)
    for _ in range(4):
        sched.step()
    nnx.io.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "s")
    assert "lr_lambdas" not in sched.state_dict()
    loaded = nnx.io.load(tmp_path / "s")
    opt2 = optim.SGD(_params(), lr=0.1)
    sched2 = getattr(lr_scheduler, name)(opt2, **kwargs)
    opt2.load_state_dict(loaded["opt"])
    sched2.load_state_dict(loaded["sched"])
    for _ in range(5):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_scheduler_per_group_and_validation():
    a, b = _params()
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=0.5)
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 0.5**e, lambda e: 1.0 + e])
    sched.step()
    sched.step()
    assert sched.get_last_lr() == pytest.approx([0.25, 0.3], rel=1e-15)
    with pytest.raises(ValueError, match="2 lr_lambdas"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=-3)


def _unaligned(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` starting one element past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 64 + a.itemsize, np.uint8)
    start = (-buf.ctypes.data) % 64 + a.itemsize
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def test_restored_state_is_aligned_and_a_copy():
    def make():
        rng = np.random.default_rng(0)
        return [Parameter(rng.standard_normal(s).astype(np.float32)) for s in [(64, 64), (300,)]]
    params = make()
    opt = optim.Adam(params, lr=0.1)
    _set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    for i, state in sd["state"].items():
        state["exp_avg"] = _unaligned(state["exp_avg"])
        state["exp_avg_sq"] = _unaligned(state["exp_avg_sq"].astype(np.float64))
    opt2 = optim.Adam(make(), lr=0.1)
    opt2.load_state_dict(sd)
    for i, p in enumerate(opt2.param_groups[0]["params"]):
        for name in ("exp_avg", "exp_avg_sq"):
            arr = opt2.state[p][name]
            assert arr.ctypes.data % 64 == 0, (i, name)
            assert arr.dtype == np.float32 and arr.flags.c_contiguous
            assert not np.shares_memory(arr, sd["state"][i][name])
            np.testing.assert_array_equal(arr, opt.state[params[i]][name])
