"""LSTM and RNN: the kernel seam (``nnx._kernels.lstm_*``/``rnn_*``) against the step-by-step
float64 references of ``nnx._reference``; the modules against those references and against
PyTorch with the same weights (multi-layer, batch_first, bidirectional, initial states, length
1, unbatched, cells); float64 gradient checks; argument errors."""

import math

import numpy as np
import pytest

import nnx
from nnx import _core
from nnx import _kernels as K
from nnx import _reference as R
from nnx.nn import LSTM, RNN, LSTMCell, RNNCell
from nnx.nn.functional_rnn import lstm_layer, rnn_layer
from nnx.testing import GradcheckError, gradcheck

RNG = np.random.default_rng(7)


def rand(*shape, dtype=np.float64, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(dtype)


def layer_arrays(t, b, i, h, gates, dtype, bias=True, seed=None):
    """x, w_ih, w_hh, b_ih, b_hh, h0 (and c0 for the LSTM) of one layer; with a seed, the same
    values for every dtype."""
    rng = RNG if seed is None else np.random.default_rng(seed)

    def r(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    out = [r(t, b, i), r(gates * h, i, scale=0.6), r(gates * h, h, scale=0.6),
           r(gates * h) if bias else None, r(gates * h) if bias else None, r(b, h)]
    return out + [r(b, h)] if gates == 4 else out


def assert_close(actual, expected, dtype):
    tol = 1e-11 if dtype == np.float64 else 2e-5
    scale = max(1.0, float(np.max(np.abs(expected)))) if np.size(expected) else 1.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale)


# (T, B, I, H): length 1, size-1 everything, a prime-ish mix, an empty batch
SHAPES = [(1, 1, 1, 1), (1, 3, 2, 4), (6, 3, 4, 5), (9, 2, 3, 1), (4, 0, 3, 2)]


# ---------------------------------------------------------------------------------------------
# The kernel seam against the reference


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_seam_matches_reference(shape, dtype, bias):
    t, b, i, h = shape
    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = layer_arrays(t, b, i, h, 4, dtype, bias)
    y, hn, cn, saved = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    ry, rh, rc = R.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    assert y.shape == (t, b, h) and hn.shape == cn.shape == (b, h)
    assert y.dtype == hn.dtype == cn.dtype == dtype
    for a, e in ((y, ry), (hn, rh), (cn, rc)):
        assert_close(a, e, dtype)
    gy, gh, gc = rand(t, b, h, dtype=dtype), rand(b, h, dtype=dtype), rand(b, h, dtype=dtype)
    grads = K.lstm_backward(gy, gh, gc, x, w_ih, w_hh, saved)
    # The seam returns grad_b even without biases: compare with a zero-bias reference then.
    zero = np.zeros(4 * h, dtype)
    ref = R.lstm_backward(gy, gh, gc, x, w_ih, w_hh, zero if b_ih is None else b_ih,
                          zero if b_hh is None else b_hh, h0, c0)
    expected = ref[:4] + ref[5:]
    for a, e in zip(grads, expected):
        assert a.dtype == dtype
        assert_close(a, e, dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_seam_matches_reference(shape, dtype, nonlinearity):
    t, b, i, h = shape
    x, w_ih, w_hh, b_ih, b_hh, h0 = layer_arrays(t, b, i, h, 1, dtype)
    y, hn, saved = K.rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity)
    ry, rh = R.rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity)
    assert_close(y, ry, dtype)
    assert_close(hn, rh, dtype)
    gy, gh = rand(t, b, h, dtype=dtype), rand(b, h, dtype=dtype)
    grads = K.rnn_backward(gy, gh, x, w_ih, w_hh, saved, nonlinearity)
    ref = R.rnn_backward(gy, gh, x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity)
    for a, e in zip(grads, ref[:4] + ref[5:]):
        assert_close(a, e, dtype)


def test_lstm_seam_outputs_and_missing_state_gradients():
    t, b, i, h = 5, 3, 2, 4
    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = layer_arrays(t, b, i, h, 4, np.float64)
    y, hn, cn, saved = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    assert not np.shares_memory(hn, y) and not np.shares_memory(cn, saved[0])
    np.testing.assert_array_equal(hn, y[-1])
    gy = rand(t, b, h)
    with_none = K.lstm_backward(gy, None, None, x, w_ih, w_hh, saved)
    zeros = K.lstm_backward(gy, np.zeros((b, h)), np.zeros((b, h)), x, w_ih, w_hh, saved)
    for a, e in zip(with_none, zeros):
        np.testing.assert_array_equal(a, e)
    only_x = K.lstm_backward(gy, None, None, x, w_ih, w_hh, saved, needs=(True, False, False))
    assert only_x[1:] == (None,) * 5
    np.testing.assert_array_equal(only_x[0], zeros[0])
    rnn_saved = K.rnn_forward(x, w_ih[:h], w_hh[:h], None, None, h0)[2]
    rnn = K.rnn_backward(gy, None, x, w_ih[:h], w_hh[:h], rnn_saved, needs=(False, True, False))
    assert rnn[0] is None and rnn[4] is None and rnn[1].shape == (h, i)
    # Missing initial states are zeros.
    y0 = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, None, None)[0]
    yz = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, np.zeros((b, h)), np.zeros((b, h)))[0]
    np.testing.assert_array_equal(y0, yz)


# (T, B, I, H) for the fused C++ steps: hidden sizes around the register-tile height (14 rows on
# AVX-512, 6 on AVX2) and a K split (4H > 256), batches of one and two column tiles.
KERNEL_SHAPES = [(3, 1, 5, 14), (4, 17, 6, 15), (2, 40, 9, 30), (5, 33, 3, 70), (2, 64, 20, 13)]


def _lstm_everything(shape, dtype, seed=0):
    t, b, i, h = shape
    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = layer_arrays(t, b, i, h, 4, dtype, True, seed=seed)
    y, hn, cn, saved = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    rng = np.random.default_rng(seed + 1)
    gy, gh, gc = (rng.standard_normal(s).astype(dtype) for s in ((t, b, h), (b, h), (b, h)))
    return (y, hn, cn) + tuple(K.lstm_backward(gy, gh, gc, x, w_ih, w_hh, saved))


def _rnn_everything(shape, dtype, nonlinearity, seed=0):
    t, b, i, h = shape
    x, w_ih, w_hh, b_ih, b_hh, h0 = layer_arrays(t, b, i, h, 1, dtype, seed=seed)
    y, hn, saved = K.rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity)
    rng = np.random.default_rng(seed + 1)
    gy, gh = (rng.standard_normal(s).astype(dtype) for s in ((t, b, h), (b, h)))
    return (y, hn) + tuple(K.rnn_backward(gy, gh, x, w_ih, w_hh, saved, nonlinearity))


def _embedded_everything(shape, dtype, seed=0):
    t, b, i, h = shape
    ids, table, w_ih, w_hh, b_ih, b_hh, h0, c0 = _embedded_case(t, b, 2 * i + 1, i, h, dtype, seed)
    y, hn, cn, saved = K.lstm_forward_embedded(ids, table, w_ih, w_hh, b_ih, b_hh, h0, c0)
    rng = np.random.default_rng(seed + 1)
    gy, gh, gc = (rng.standard_normal(s).astype(dtype) for s in ((t, b, h), (b, h), (b, h)))
    return (y, hn, cn) + tuple(K.lstm_backward_embedded(gy, gh, gc, ids, table, w_ih, w_hh,
                                                        saved))


@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_fused_steps_match_reference_on_every_isa(shape, isa):
    """float32 through each ISA's fused steps (and the reference steps under "ref") against the
    float64 references."""
    got = _lstm_everything(shape, np.float32)
    got_rnn = {n: _rnn_everything(shape, np.float32, n) for n in ("tanh", "relu")}
    ref = _lstm_everything(shape, np.float64)
    for a, e in zip(got, ref):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-5 * max(1.0, np.abs(e).max()))
    for n, values in got_rnn.items():
        for a, e in zip(values, _rnn_everything(shape, np.float64, n)):
            np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-5 * max(1.0, np.abs(e).max()))


@pytest.mark.parametrize("shape", KERNEL_SHAPES + [(64, 32, 64, 128)])
def test_recurrent_layers_are_bitwise_equal_for_any_thread_count(shape, threads):
    results = []
    for n in (1, 2, 3):
        _core.set_num_threads(n)
        results.append(_lstm_everything(shape, np.float32)
                       + _rnn_everything(shape, np.float32, "tanh")
                       + _embedded_everything(shape, np.float32))
    for other in results[1:]:
        for a, e in zip(other, results[0]):
            np.testing.assert_array_equal(a, e)


def test_seam_refuses_mismatched_saved_buffer():
    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = layer_arrays(40, 2, 2, 4, 4, np.float32, True)
    saved = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)[3]
    with pytest.raises(ValueError, match="saved must have shape"):  # from another sequence
        K.lstm_backward(rand(20, 2, 4, dtype=np.float32), None, None, x[:20], w_ih, w_hh, saved)
    with pytest.raises(ValueError, match="grad_y must have shape"):
        K.lstm_backward(rand(40, 2, 5, dtype=np.float32), None, None, x, w_ih, w_hh, saved)


# ---------------------------------------------------------------------------------------------
# Modules against the reference, layer by layer


def reference_lstm_stack(model, x, h0, c0, grad_out, grad_h, grad_c):
    """Forward and backward of a unidirectional, time-major LSTM through the reference, one
    layer after another: (output, h_n, c_n, {parameter name: gradient}, grad_x)."""
    p = model.state_dict()
    inputs, outs = [x], []
    for k in range(model.num_layers):
        y, hn, cn = R.lstm_forward(inputs[-1], p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"],
                                   p[f"bias_ih_l{k}"], p[f"bias_hh_l{k}"], h0[k], c0[k])
        inputs.append(y)
        outs.append((hn, cn))
    grads, g = {}, grad_out
    for k in reversed(range(model.num_layers)):
        gx, gw_ih, gw_hh, gb_ih, gb_hh, _, _ = R.lstm_backward(
            g, grad_h[k], grad_c[k], inputs[k], p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"],
            p[f"bias_ih_l{k}"], p[f"bias_hh_l{k}"], h0[k], c0[k])
        grads.update({f"weight_ih_l{k}": gw_ih, f"weight_hh_l{k}": gw_hh,
                      f"bias_ih_l{k}": gb_ih, f"bias_hh_l{k}": gb_hh})
        g = gx
    return inputs[-1], np.stack([o[0] for o in outs]), np.stack([o[1] for o in outs]), grads, g


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("t", [1, 6])
def test_multilayer_lstm_matches_reference(layers, t):
    nnx.manual_seed(layers)
    model = LSTM(3, 4, num_layers=layers, dtype=np.float64)
    b = 2
    x, h0, c0 = rand(t, b, 3), rand(layers, b, 4), rand(layers, b, 4)
    go, gh, gc = rand(t, b, 4), rand(layers, b, 4), rand(layers, b, 4)
    xt = nnx.tensor(x, requires_grad=True)
    out, (hn, cn) = model(xt, (nnx.tensor(h0), nnx.tensor(c0)))
    ((out * nnx.tensor(go)).sum() + (hn * nnx.tensor(gh)).sum()
     + (cn * nnx.tensor(gc)).sum()).backward()
    r_out, r_hn, r_cn, r_grads, r_gx = reference_lstm_stack(model, x, h0, c0, go, gh, gc)
    for a, e in ((out.data, r_out), (hn.data, r_hn), (cn.data, r_cn), (xt.grad.data, r_gx)):
        assert_close(a, e, np.float64)
    for name, p in model.named_parameters():
        assert_close(p.grad.data, r_grads[name], np.float64)


def test_rnn_module_matches_reference_with_batch_first():
    nnx.manual_seed(3)
    model = RNN(3, 5, num_layers=2, nonlinearity="relu", batch_first=True, dtype=np.float64)
    p = model.state_dict()
    x, h0 = rand(2, 4, 3), rand(2, 2, 5)  # (B, T, I) and (layers, B, H)
    out, hn = model(nnx.tensor(x), nnx.tensor(h0))
    y = x.transpose(1, 0, 2)
    finals = []
    for k in range(2):
        y, last = R.rnn_forward(y, p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"], p[f"bias_ih_l{k}"],
                                p[f"bias_hh_l{k}"], h0[k], "relu")
        finals.append(last)
    assert out.shape == (2, 4, 5) and hn.shape == (2, 2, 5)
    assert_close(out.data, y.transpose(1, 0, 2), np.float64)
    assert_close(hn.data, np.stack(finals), np.float64)


# ---------------------------------------------------------------------------------------------
# PyTorch parity with the same weights


CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(num_layers=3, batch_first=True),
    dict(num_layers=2, bidirectional=True),
    dict(bias=False, batch_first=True, bidirectional=True),
]
KIND_CONFIGS = [(kind, cfg) for kind in ("LSTM", "RNN") for cfg in CONFIGS] + [
    ("RNN", dict(num_layers=2, nonlinearity="relu")),
    ("RNN", dict(nonlinearity="relu", bidirectional=True))]


def _torch_pair(kind, cfg, dtype=np.float64):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, kind)(3, 4, **cfg)
    theirs = theirs.double() if dtype == np.float64 else theirs
    ours = {"LSTM": LSTM, "RNN": RNN}[kind](3, 4, dtype=dtype, **cfg)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return torch, theirs, ours


@pytest.mark.parametrize("kind, cfg", KIND_CONFIGS)
@pytest.mark.parametrize("t", [1, 5])
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_torch(kind, cfg, t, with_state):
    torch, theirs, ours = _torch_pair(kind, cfg)
    b = 3
    layers = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    x = rand(b, t, 3) if cfg.get("batch_first") else rand(t, b, 3)
    states = [rand(layers, b, 4) for _ in range(2 if kind == "LSTM" else 1)]
    tx = torch.tensor(x, requires_grad=True)
    nx = nnx.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    ns = [nnx.tensor(s, requires_grad=True) for s in states]
    pack = (lambda s: tuple(s)) if kind == "LSTM" else (lambda s: s[0])
    t_out, t_fin = theirs(tx, pack(ts)) if with_state else theirs(tx)
    n_out, n_fin = ours(nx, pack(ns)) if with_state else ours(nx)
    t_fin = list(t_fin) if kind == "LSTM" else [t_fin]
    n_fin = list(n_fin) if kind == "LSTM" else [n_fin]
    weights = [rand(*o.shape) for o in [n_out, *n_fin]]
    sum(((a * torch.tensor(w)).sum() for a, w in zip([t_out, *t_fin], weights))).backward()
    sum(((a * nnx.tensor(w)).sum() for a, w in zip([n_out, *n_fin], weights)),
        nnx.tensor(0.0, dtype=np.float64)).backward()
    for a, e in zip([n_out, *n_fin, nx.grad], [t_out, *t_fin, tx.grad]):
        assert a.shape == tuple(e.shape)
        assert_close(a.data, e.detach().numpy(), np.float64)
    if with_state:
        for a, e in zip(ns, ts):
            assert_close(a.grad.data, e.grad.numpy(), np.float64)
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.data, t_params[name].grad.numpy(), np.float64)


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_float32_and_unbatched_match_torch(kind):
    torch, theirs, ours = _torch_pair(kind, dict(num_layers=2), np.float32)
    x = rand(7, 3, dtype=np.float32)  # one unbatched sequence (T, I)
    t_out, t_fin = theirs(torch.tensor(x))
    n_out, n_fin = ours(nnx.tensor(x))
    assert n_out.dtype == np.float32 and n_out.shape == (7, 4)
    np.testing.assert_allclose(n_out.data, t_out.detach().numpy(), atol=1e-5)
    t_h = t_fin[0] if kind == "LSTM" else t_fin
    n_h = n_fin[0] if kind == "LSTM" else n_fin
    assert n_h.shape == (2, 4)
    np.testing.assert_allclose(n_h.data, t_h.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTMCell", "RNNCell"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_cells_match_torch(kind, batched, with_state):
    torch = pytest.importorskip("torch")
    kwargs = {"nonlinearity": "relu"} if kind == "RNNCell" and batched else {}
    theirs = getattr(torch.nn, kind)(3, 4, **kwargs).double()
    ours = {"LSTMCell": LSTMCell, "RNNCell": RNNCell}[kind](3, 4, dtype=np.float64, **kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    shape = (2,) if batched else ()
    x = rand(*shape, 3)
    states = [rand(*shape, 4) for _ in range(2 if kind == "LSTMCell" else 1)]
    pack = tuple if kind == "LSTMCell" else (lambda s: s[0])
    args_t = (torch.tensor(x, requires_grad=True),) + ((pack([torch.tensor(s) for s in states]),)
                                                       if with_state else ())
    nx = nnx.tensor(x, requires_grad=True)
    args_n = (nx,) + ((pack([nnx.tensor(s) for s in states]),) if with_state else ())
    t_res, n_res = theirs(*args_t), ours(*args_n)
    t_res = list(t_res) if kind == "LSTMCell" else [t_res]
    n_res = list(n_res) if kind == "LSTMCell" else [n_res]
    for a, e in zip(n_res, t_res):
        assert a.shape == tuple(e.shape)
        assert_close(a.data, e.detach().numpy(), np.float64)
    sum((r * r).sum() for r in t_res).backward()
    sum(((r * r).sum() for r in n_res), nnx.tensor(0.0, dtype=np.float64)).backward()
    assert_close(nx.grad.data, args_t[0].grad.numpy(), np.float64)
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.data, t_params[name].grad.numpy(), np.float64)


def test_reprs_names_and_shapes_match_torch():
    tnn = pytest.importorskip("torch").nn
    pairs = [(LSTM(10, 20), tnn.LSTM(10, 20)),
             (LSTM(3, 5, 2, bias=False, batch_first=True, dropout=0.25, bidirectional=True),
              tnn.LSTM(3, 5, 2, bias=False, batch_first=True, dropout=0.25, bidirectional=True)),
             (RNN(4, 6, 3, nonlinearity="relu"), tnn.RNN(4, 6, 3, nonlinearity="relu")),
             (LSTMCell(3, 5, bias=False), tnn.LSTMCell(3, 5, bias=False)),
             (RNNCell(3, 5, nonlinearity="relu"), tnn.RNNCell(3, 5, nonlinearity="relu"))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert [(n, p.shape) for n, p in ours.named_parameters()] == \
            [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    # A state dict saved by nnx loads into torch as it is.
    ours, theirs = pairs[1]
    theirs.load_state_dict({k: __import__("torch").tensor(v)
                            for k, v in ours.state_dict().items()})


# ---------------------------------------------------------------------------------------------
# Initialisation, dropout, threads


def test_default_init_is_uniform_within_one_over_sqrt_hidden():
    nnx.manual_seed(0)
    model = LSTM(30, 64, num_layers=2)
    bound = 1 / math.sqrt(64)
    for name, p in model.named_parameters():
        assert p.dtype == np.float32 and p.data.ctypes.data % 64 == 0
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.9 * bound, name
    w = model.weight_hh_l1.data
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # uniform, not normal
    cell = RNNCell(5, 16)
    assert all(np.abs(p.data).max() <= 0.25 for p in cell.parameters())


def test_dropout_between_layers():
    nnx.manual_seed(0)
    plain = LSTM(3, 4, num_layers=2)
    dropped = LSTM(3, 4, num_layers=2, dropout=1.0)
    dropped.load_state_dict(plain.state_dict())
    x1, x2 = nnx.tensor(rand(5, 2, 3, dtype=np.float32)), nnx.tensor(rand(5, 2, 3,
                                                                        dtype=np.float32))
    # Training mode with p = 1: the second layer sees zeros, whatever the input.
    np.testing.assert_array_equal(dropped(x1)[0].data, dropped(x2)[0].data)
    assert not np.allclose(plain(x1)[0].data, plain(x2)[0].data)
    dropped.eval()  # no dropout in evaluation mode
    np.testing.assert_array_equal(dropped(x1)[0].data, plain(x1)[0].data)
    with pytest.warns(UserWarning, match="num_layers=1"):
        LSTM(3, 4, dropout=0.5)


def test_bitwise_identical_for_1_and_2_threads(threads):
    results = []
    for n in (1, 2):
        nnx.set_num_threads(n)
        nnx.manual_seed(0)
        model = LSTM(16, 32, num_layers=2)
        x = nnx.tensor(np.random.default_rng(1).standard_normal((9, 5, 16)).astype(np.float32))
        out, (hn, cn) = model(x)
        ((out * out).sum() + cn.sum()).backward()
        results.append([out.data, hn.data] + [p.grad.data for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_sequence_of_length_one_equals_a_cell_step():
    nnx.manual_seed(0)
    layer, cell = LSTM(3, 4, dtype=np.float64), LSTMCell(3, 4, dtype=np.float64)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x, h, c = rand(1, 2, 3), rand(1, 2, 4), rand(1, 2, 4)
    out, (hn, cn) = layer(nnx.tensor(x), (nnx.tensor(h), nnx.tensor(c)))
    h1, c1 = cell(nnx.tensor(x[0]), (nnx.tensor(h[0]), nnx.tensor(c[0])))
    np.testing.assert_array_equal(out.data[0], h1.data)
    np.testing.assert_array_equal(cn.data[0], c1.data)


# ---------------------------------------------------------------------------------------------
# Gradient checks (float64, small sizes)


def leaves(*arrays):
    return [nnx.tensor(a, requires_grad=True) for a in arrays]


def test_gradcheck_lstm_layer_all_inputs():
    args = leaves(*layer_arrays(3, 2, 3, 2, 4, np.float64))
    assert gradcheck(lambda *a: lstm_layer(*a), args)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradcheck_rnn_layer_all_inputs(nonlinearity):
    args = leaves(*layer_arrays(4, 2, 3, 3, 1, np.float64))
    assert gradcheck(lambda *a: rnn_layer(*a, nonlinearity=nonlinearity), args)


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_gradcheck_bidirectional_two_layer_module(kind):
    nnx.manual_seed(1)
    model = {"LSTM": LSTM, "RNN": RNN}[kind](2, 2, num_layers=2, bidirectional=True,
                                           batch_first=True, dtype=np.float64)
    params = list(model.parameters())
    n_states = 2 if kind == "LSTM" else 1
    x, *states = leaves(rand(2, 3, 2), *[rand(4, 2, 2, scale=0.5) for _ in range(n_states)])

    def fn(x, *rest):  # the parameters are perturbed in place through `rest`
        hx = tuple(rest[:n_states]) if kind == "LSTM" else rest[0]
        out, fin = model(x, hx)
        return (out, *fin) if kind == "LSTM" else (out, fin)

    assert gradcheck(fn, [x, *states, *params])


def test_gradcheck_cells():
    nnx.manual_seed(2)
    lstm, rnn = LSTMCell(3, 2, dtype=np.float64), RNNCell(3, 2, dtype=np.float64)
    x, h, c = leaves(rand(2, 3), rand(2, 2), rand(2, 2))
    assert gradcheck(lambda x, h, c, *p: lstm(x, (h, c)), [x, h, c, *lstm.parameters()])
    assert gradcheck(lambda x, h, *p: rnn(x, h), [x, h, *rnn.parameters()])


def test_gradcheck_rejects_a_wrong_recurrent_gradient(monkeypatch):
    args = leaves(*layer_arrays(3, 2, 2, 2, 4, np.float64))
    assert gradcheck(lambda *a: lstm_layer(*a), args)
    right = K.lstm_backward

    def wrong(*a, **kw):
        gx, gw_ih, gw_hh, gb, gh0, gc0 = right(*a, **kw)
        return gx, gw_ih, gw_hh * 1.01, gb, gh0, gc0

    monkeypatch.setattr(K, "lstm_backward", wrong)
    with pytest.raises(GradcheckError, match="input 2"):
        gradcheck(lambda *a: lstm_layer(*a), args)


# ---------------------------------------------------------------------------------------------
# Errors


def test_bad_inputs_raise_clear_errors():
    model = LSTM(3, 4, num_layers=2)
    x = nnx.tensor(rand(5, 2, 3, dtype=np.float32))
    h = nnx.tensor(np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"input_size is 3 but the input has 7 features"):
        model(nnx.tensor(rand(5, 2, 7, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"h_0 must have shape .* = \(2, 2, 4\), got \(1, 2, 4\)"):
        model(x, (nnx.tensor(np.zeros((1, 2, 4), np.float32)), h))
    with pytest.raises(ValueError, match=r"c_0 must have shape .* = \(2, 2, 4\), got \(2, 3, 4\)"):
        model(x, (h, nnx.tensor(np.zeros((2, 3, 4), np.float32))))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        model(x, h)
    with pytest.raises(ValueError, match="must be 3-D"):
        model(nnx.tensor(rand(3, dtype=np.float32)))
    with pytest.raises(ValueError, match="no time steps"):
        model(nnx.tensor(np.zeros((0, 2, 3), np.float32)))
    with pytest.raises(TypeError, match="input is float64 but weight_ih_l0 is float32"):
        model(nnx.tensor(rand(5, 2, 3)))
    with pytest.raises(TypeError, match="integer|float32 or float64"):
        model(nnx.tensor(np.zeros((5, 2, 3), np.int64)))
    with pytest.raises(ValueError, match=r"h_0 must have shape .* \(1, 4\), got \(1, 2, 4\)"):
        RNN(3, 4)(nnx.tensor(rand(5, 3, dtype=np.float32)),
                  nnx.tensor(np.zeros((1, 2, 4), np.float32)))
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match="input_size is 3 but the input has 2 features"):
        cell(nnx.tensor(rand(2, 2, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"c must have shape \(2, 4\)"):
        cell(nnx.tensor(rand(2, 3, dtype=np.float32)),
             (nnx.tensor(np.zeros((2, 4), np.float32)), nnx.tensor(np.zeros((3, 4), np.float32))))


def test_bad_constructor_and_functional_arguments():
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        LSTM(3, 0)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout must be a probability"):
        LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(NotImplementedError, match="proj_size"):
        LSTM(3, 4, proj_size=2)
    x = nnx.tensor(rand(2, 1, 3))
    with pytest.raises(ValueError, match=r"w_hh must have shape \(4 \* hidden_size"):
        lstm_layer(x, nnx.tensor(rand(8, 3)), nnx.tensor(rand(8, 3)))
    with pytest.raises(ValueError, match="input has 3 features .* w_ih expects input_size 2"):
        lstm_layer(x, nnx.tensor(rand(8, 2)), nnx.tensor(rand(8, 2)))
    with pytest.raises(ValueError, match=r"b_ih must have shape \(2,\)"):
        rnn_layer(x, nnx.tensor(rand(2, 3)), nnx.tensor(rand(2, 2)), nnx.tensor(rand(3)))


# ---------------------------------------------------------------------------------------------
# An LSTM fed by an embedding: the fused path (input projection per table row)


def _embedded_case(t, b, v, i, h, dtype, seed=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, (t, b))
    table = rng.standard_normal((v, i)).astype(dtype)
    _, w_ih, w_hh, b_ih, b_hh, h0, c0 = layer_arrays(t, b, i, h, 4, dtype, True, seed=seed)
    return ids, table, w_ih, w_hh, b_ih, b_hh, h0, c0


@pytest.mark.parametrize("shape", [(5, 3, 7, 4, 6), (7, 33, 65, 16, 15), (2, 1, 1, 3, 30)])
def test_embedded_seam_equals_embedding_then_lstm(shape, isa):
    for dtype in (np.float64, np.float32):
        ids, table, w_ih, w_hh, b_ih, b_hh, h0, c0 = _embedded_case(*shape, dtype)
        x = table[ids]
        dense = K.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
        fused = K.lstm_forward_embedded(ids, table, w_ih, w_hh, b_ih, b_hh, h0, c0)
        for a, e in zip(fused[:3], dense[:3]):
            assert_close(a, e, dtype)
        rng = np.random.default_rng(5)
        gy = rng.standard_normal(dense[0].shape).astype(dtype)
        gh, gc = (rng.standard_normal(h0.shape).astype(dtype) for _ in range(2))
        gd = K.lstm_backward(gy, gh, gc, x, w_ih, w_hh, dense[3])
        gf = K.lstm_backward_embedded(gy, gh, gc, ids, table, w_ih, w_hh, fused[3])
        grad_table = np.zeros_like(table)
        np.add.at(grad_table, ids.reshape(-1), gd[0].reshape(-1, table.shape[1]))
        assert_close(gf[0], grad_table, dtype)
        for a, e in zip(gf[1:], gd[1:]):
            assert_close(a, e, dtype)


def test_embedded_seam_bad_ids():
    ids, table, w_ih, w_hh, *_ = _embedded_case(3, 2, 5, 4, 3, np.float32)
    ids[1, 1] = 5
    with pytest.raises(IndexError, match="id 5 at position 3 is out of range for 5"):
        K.lstm_forward_embedded(ids, table, w_ih, w_hh, None, None, None, None)


def test_gradcheck_lstm_layer_embedded():
    from nnx.nn.functional_rnn import lstm_layer_embedded
    ids, *arrays = _embedded_case(3, 2, 4, 3, 2, np.float64)
    args = leaves(*arrays)
    assert gradcheck(lambda *a: lstm_layer_embedded(ids, *a), args)
    padded = lstm_layer_embedded(ids, *args, padding_idx=int(ids[0, 0]))
    padded[0].sum().backward()
    assert not args[0].grad.numpy()[ids[0, 0]].any()  # the padding row gets no gradient


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_module_fuses_an_embedding_input(bidirectional, monkeypatch):
    import nnx.nn.functional_rnn as FR
    nnx.manual_seed(4)
    emb = nnx.nn.Embedding(11, 5, dtype=np.float64)
    lstm = LSTM(5, 4, num_layers=2, bidirectional=bidirectional, dtype=np.float64)
    ids = nnx.tensor(np.random.default_rng(0).integers(0, 11, (6, 3)))
    calls = []
    real = FR.EmbeddedLSTMLayer.apply
    monkeypatch.setattr(FR.EmbeddedLSTMLayer, "apply",
                        lambda *a: calls.append(1) or real(*a))

    def run(fused):
        for p in (*emb.parameters(), *lstm.parameters()):
            p.grad = None
        x = emb(ids)
        if not fused:
            x = x * 1.0  # a new tensor: no longer known to be table[ids]
        out, (h, c) = lstm(x)
        (out.sum() + (h * h).sum() + c.sum()).backward()
        return [out.detach().numpy(), h.detach().numpy()] + \
            [p.grad.numpy().copy() for p in (*emb.parameters(), *lstm.parameters())]

    fused = run(True)
    assert len(calls) == (2 if bidirectional else 1)
    unfused = run(False)
    assert len(calls) == (2 if bidirectional else 1)
    for a, e in zip(fused, unfused):
        assert_close(a, e, np.float64)


def test_embedding_output_changed_in_place_is_not_fused(monkeypatch):
    import nnx.nn.functional_rnn as FR
    emb, lstm = nnx.nn.Embedding(6, 3), LSTM(3, 2)
    ids = nnx.tensor(np.arange(6).reshape(3, 2))
    calls = []
    real = FR.EmbeddedLSTMLayer.apply
    monkeypatch.setattr(FR.EmbeddedLSTMLayer, "apply",
                        lambda *a: calls.append(1) or real(*a))
    with nnx.no_grad():
        x = emb(ids)
        x.add_(1.0)
        out, _ = lstm(x)
        assert not calls
        expected, _ = lstm(emb(ids) + 1.0)
        np.testing.assert_array_equal(out.numpy(), expected.numpy())
        x2 = emb(ids)
        emb.weight.mul_(2.0)  # the table changed after the lookup
        lstm(x2)
        assert not calls
