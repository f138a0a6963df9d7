"""Fuzz targets for every public function of ``nnx._core`` (see ``fuzz_worker``).

Each builder draws arguments that are valid or nearly so (consistent shapes of edge sizes, the
float dtype of the call, special values), which ``fuzz_worker.mutate`` then breaks. ``KNOWN``
lists the crashes found in the C++ bindings that are not fixed yet.
"""

from __future__ import annotations

import numpy as np
from fuzz_worker import KnownIssue, Target

from nnx import _core

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "hardsigmoid")
POINT_LOSSES = ("mse", "l1", "bce_with_logits")


def _dtype(d):
    return d.pick((np.float32, np.float64))


def _shape(d, ndim_lo=0, ndim_hi=4):
    return tuple(d.size() for _ in range(d.int(ndim_lo, ndim_hi)))


# -- activations, softmax ----------------------------------------------------------------------

def act_forward(d):
    return [d.pick(ACTIVATIONS), d.array(_shape(d), _dtype(d))], {"alpha": d.float(-2, 2)}


def act_backward(d):
    shape, dt = _shape(d), _dtype(d)
    return [d.pick(ACTIVATIONS), d.array(shape, dt), d.array(shape, dt), d.array(shape, dt)], \
        {"alpha": d.float(-2, 2)}


def softmax_forward(d):
    return [d.array(_shape(d, 1), _dtype(d))], {"log": d.bool()}


def softmax_backward(d):
    shape, dt = _shape(d, 1), _dtype(d)
    return [d.array(shape, dt), d.array(shape, dt)], {"log": d.bool()}


# -- losses ------------------------------------------------------------------------------------

def _classes(d, n, c):
    return d.rng.integers(0, max(c, 1), n).astype(np.int64)


def _target(d, n, c, dt):
    if d.bool():
        return _classes(d, n, c)
    p = d.rng.random((n, c)).astype(dt)
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-6).astype(dt)


def cross_entropy_forward(d):
    n, c, dt = d.size(), d.size(), _dtype(d)
    return [d.array((n, c), dt), _target(d, n, c, dt)], {"label_smoothing": d.float(0, 1)}


def cross_entropy_backward(d):
    n, c, dt = d.size(), d.size(), _dtype(d)
    return [d.array((n,), dt), d.array((n, c), dt), _target(d, n, c, dt)], \
        {"label_smoothing": d.float(0, 1)}


def elementwise_loss_forward(d):
    shape, dt = _shape(d), _dtype(d)
    return [d.pick(POINT_LOSSES), d.array(shape, dt), d.array(shape, dt)], {}


def elementwise_loss_backward(d):
    shape, dt = _shape(d), _dtype(d)
    return [d.pick(POINT_LOSSES), d.array(shape, dt), d.array(shape, dt), d.array(shape, dt)], {}


def multiclass_hinge_forward(d):
    n, c, dt = d.size(), d.size(), _dtype(d)
    return [d.array((n, c), dt), _classes(d, n, c)], {"margin": d.float(-2, 2)}


def multiclass_hinge_backward(d):
    n, c, dt = d.size(), d.size(), _dtype(d)
    return [d.array((n,), dt), d.array((n, c), dt), _classes(d, n, c)], \
        {"margin": d.float(-2, 2)}


# -- optimizers, GEMM --------------------------------------------------------------------------

def sgd_step(d):
    shape, dt = _shape(d, 0, 3), _dtype(d)
    momentum = d.pick((0.0, 0.9))
    buf = d.array(shape, dt) if momentum or d.bool() else None
    return [d.array(shape, dt), d.array(shape, dt), buf], {
        "lr": d.float(0, 1), "momentum": momentum, "dampening": d.pick((0.0, 0.1)),
        "weight_decay": d.pick((0.0, 1e-4)), "nesterov": d.bool(), "first_step": d.bool()}


def adam_step(d):
    shape, dt = _shape(d, 0, 3), _dtype(d)
    return [d.array(shape, dt), d.array(shape, dt), d.array(shape, dt),
            np.abs(d.array(shape, dt))], {
        "step": d.int(1, 10), "lr": d.float(0, 1), "beta1": 0.9, "beta2": 0.999,
        "eps": 1e-8, "weight_decay": d.pick((0.0, 1e-2)), "decoupled": d.bool()}


def adam_steps(d):
    lists = [[], [], [], []]
    for _ in range(d.int(0, 3)):
        shape, dt = _shape(d, 0, 3), _dtype(d)
        for i, arr in enumerate((d.array(shape, dt), d.array(shape, dt), d.array(shape, dt),
                                 np.abs(d.array(shape, dt)))):
            lists[i].append(arr)
    return lists + [[d.int(1, 10) for _ in lists[0]]], {
        "lr": d.float(0, 1), "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
        "weight_decay": d.pick((0.0, 1e-2)), "decoupled": d.bool()}


def sum_of_squares(d):
    return [d.array(_shape(d, 0, 3), _dtype(d))], {}


def gemm(d):
    m, n, k, dt = d.size(9), d.size(9), d.size(9), _dtype(d)
    ta, tb = d.bool(), d.bool()
    a = d.array((k, m) if ta else (m, k), dt)
    b = d.array((n, k) if tb else (k, n), dt)
    mode = d.pick(("none", "row", "col"))
    bias = None if mode == "none" else d.array((m if mode == "row" else n,), dt)
    return [a, b, d.array((m, n), dt)], {
        "trans_a": ta, "trans_b": tb, "alpha": d.float(-2, 2), "beta": d.pick((0.0, 1.0)),
        "bias": bias, "bias_mode": mode, "relu": d.bool()}


# -- convolution, pooling ----------------------------------------------------------------------

def _out(size, kernel, stride, pad, dil=1):
    return (size + 2 * pad - dil * (kernel - 1) - 1) // stride + 1


def _conv(d):
    # 16 images at times: a vector's worth of them in lanes (input_grad_lanes).
    n, c, h, w, k = d.size(16), d.pick((1, 2, 3)), d.pick((1, 3, 5, 8)), d.pick((1, 4, 7)), \
        d.pick((1, 2, 4))
    r, s = d.pick((1, 2, 3)), d.pick((1, 3))
    stride, pad, dil = (d.pick((1, 2)), d.pick((1, 3))), (d.pick((0, 1)), d.pick((0, 2))), \
        (d.pick((1, 2)), 1)
    return n, c, h, w, k, r, s, stride, pad, dil


def conv2d_forward(d):
    n, c, h, w, k, r, s, stride, pad, dil = _conv(d)
    dt = _dtype(d)
    b = d.array((k,), dt) if d.bool() else None
    return [d.array((n, c, h, w), dt), d.array((k, c, r, s), dt), b, stride, pad, dil], \
        {"relu": d.bool()}


def conv2d_backward(d):
    n, c, h, w, k, r, s, stride, pad, dil = _conv(d)
    dt = _dtype(d)
    p, q = _out(h, r, stride[0], pad[0], dil[0]), _out(w, s, stride[1], pad[1], dil[1])
    gy = d.array((n, k, max(p, 1), max(q, 1)), dt)
    return [gy, d.array((n, c, h, w), dt), d.array((k, c, r, s), dt), stride, pad, dil,
            d.bool(), d.bool(), d.bool()], {}


def _pool(d):
    n, c, h, w = d.size(), d.size(), d.pick((1, 2, 5, 8)), d.pick((1, 3, 6))
    kernel = (d.pick((1, 2, 3)), d.pick((1, 2)))
    stride = (d.pick((1, 2)), d.pick((1, 3)))
    pad = (d.pick((0, 1)), 0)
    return n, c, h, w, kernel, stride, pad


def max_pool2d_forward(d):
    n, c, h, w, kernel, stride, pad = _pool(d)
    return [d.array((n, c, h, w), _dtype(d)), kernel, stride, pad], {}


def max_pool2d_backward(d):
    n, c, h, w, kernel, stride, pad = _pool(d)
    p, q = max(_out(h, kernel[0], stride[0], pad[0]), 1), max(_out(w, kernel[1], stride[1], 0), 1)
    indices = d.rng.integers(0, h * w, (n, c, p, q)).astype(np.int64)
    return [d.array((n, c, p, q), _dtype(d)), indices, [n, c, h, w]], {}


def avg_pool2d_forward(d):
    n, c, h, w, kernel, stride, pad = _pool(d)
    return [d.array((n, c, h, w), _dtype(d)), kernel, stride, pad, d.bool()], {}


def avg_pool2d_backward(d):
    n, c, h, w, kernel, stride, pad = _pool(d)
    p, q = max(_out(h, kernel[0], stride[0], pad[0]), 1), max(_out(w, kernel[1], stride[1], 0), 1)
    return [d.array((n, c, p, q), _dtype(d)), [n, c, h, w], kernel, stride, pad, d.bool()], {}


def adaptive_avg_pool2d_forward(d):
    n, c, h, w, *_ = _pool(d)
    return [d.array((n, c, h, w), _dtype(d)), (d.pick((1, 2, 3, 7)), d.pick((1, 2, 4)))], {}


def adaptive_avg_pool2d_backward(d):
    n, c, h, w, *_ = _pool(d)
    p, q = d.pick((1, 2, 3, 7)), d.pick((1, 2, 4))
    return [d.array((n, c, p, q), _dtype(d)), [n, c, h, w]], {}


# -- batch norm, kNN ---------------------------------------------------------------------------

def _bn_shape(d):
    return (d.size(), d.pick((1, 2, 3))) + _shape(d, 0, 2)


def batch_norm_forward_train(d):
    shape, dt = _bn_shape(d), _dtype(d)
    c = shape[1]
    gamma = d.array((c,), dt) if d.bool() else None
    beta = d.array((c,), dt) if d.bool() else None
    return [d.array(shape, dt), gamma, beta, d.pick((1e-5, 0.0, 1.0))], {}


def batch_norm_forward_eval(d):
    shape, dt = _bn_shape(d), _dtype(d)
    c = shape[1]
    gamma = d.array((c,), dt) if d.bool() else None
    beta = d.array((c,), dt) if d.bool() else None
    return [d.array(shape, dt), d.array((c,), dt), np.abs(d.array((c,), dt)), gamma, beta,
            d.pick((1e-5, 0.0, 1.0))], {}


def batch_norm_backward(d):
    shape, dt = _bn_shape(d), _dtype(d)
    c = shape[1]
    gamma = d.array((c,), dt) if d.bool() else None
    return [d.array(shape, dt), d.array(shape, dt), gamma, d.array((c,), dt),
            np.abs(d.array((c,), dt))], {}


def knn_search(d):
    q, r, dim, dt = d.size(), d.pick((1, 2, 5, 9)), d.pick((1, 2, 3, 8)), _dtype(d)
    # Mostly plain values: NaN, Inf and huge values all end in the same up-front error.
    refs = d.array((r, dim), dt) if d.pick((0, 0, 1)) else d.rng.standard_normal((r, dim))
    return [d.array((q, dim), dt), refs.astype(dt), d.int(1, r), d.pick(("l1", "l2"))], {}


# -- recurrent layers, embedding -----------------------------------------------------------------

def _recurrent(d, gates):
    t, b, i, h, dt = d.size() or 1, d.size(), d.size() or 1, d.size() or 1, _dtype(d)
    layer = [d.array((t, b, i), dt), d.array((gates * h, i), dt), d.array((gates * h, h), dt)]
    biases = [d.pick((None, d.array((gates * h,), dt))) for _ in range(2)]
    states = [d.pick((None, d.array((b, h), dt))) for _ in range(2 if gates == 4 else 1)]
    return layer, biases, states


def lstm_forward(d):
    layer, biases, states = _recurrent(d, 4)
    return layer + biases + states, {}


def lstm_backward(d):
    layer, biases, states = _recurrent(d, 4)
    x, w_ih, w_hh = layer
    saved = _core.lstm_forward(*layer, *biases, *states)[3] if d.bool() else \
        d.array((d.size(hi=200),), x.dtype)
    t, b, h = x.shape[0], x.shape[1], w_hh.shape[1]
    grads = [d.array((t, b, h), x.dtype)] + [d.pick((None, d.array((b, h), x.dtype)))
                                              for _ in range(2)]
    return grads + [x, w_ih, w_hh, saved], {"need_input": d.bool(), "need_weights": d.bool(),
                                            "need_states": d.bool()}


def _embedded(d):
    layer, biases, states = _recurrent(d, 4)
    x, w_ih, w_hh = layer
    v = d.size() or 1
    ids = d.rng.integers(-1 if d.pick((0, 0, 0, 1)) else 0, v + d.pick((0, 0, 0, 1)),
                         size=x.shape[:2], dtype=np.int64)
    return [ids, d.array((v, x.shape[2]), x.dtype), w_ih, w_hh], biases, states


def lstm_forward_embedded(d):
    layer, biases, states = _embedded(d)
    return layer + biases + states, {}


def lstm_backward_embedded(d):
    layer, biases, states = _embedded(d)
    ids, table, w_ih, w_hh = layer
    try:
        saved = _core.lstm_forward_embedded(*layer, *biases, *states)[3] if d.bool() else None
    except IndexError:  # an id out of range: the backward gets a junk buffer instead
        saved = None
    if saved is None:
        saved = d.array((d.size(hi=200),), table.dtype)
    t, b, h = ids.shape[0], ids.shape[1], w_hh.shape[1]
    grads = [d.array((t, b, h), table.dtype)] + [d.pick((None, d.array((b, h), table.dtype)))
                                                  for _ in range(2)]
    return grads + [ids, table, w_ih, w_hh, saved], {"need_table": d.bool(),
                                                     "need_weights": d.bool(),
                                                     "need_states": d.bool()}


def rnn_forward(d):
    layer, biases, states = _recurrent(d, 1)
    return layer + biases + states + [d.pick(("tanh", "relu", "sigmoid"))], {}


def rnn_backward(d):
    layer, biases, states = _recurrent(d, 1)
    x, w_ih, w_hh = layer
    act = d.pick(("tanh", "relu"))
    saved = _core.rnn_forward(*layer, *biases, *states, act)[2] if d.bool() else \
        d.array((d.size(hi=200),), x.dtype)
    t, b, h = x.shape[0], x.shape[1], w_hh.shape[1]
    grads = [d.array((t, b, h), x.dtype), d.pick((None, d.array((b, h), x.dtype)))]
    return grads + [x, w_ih, w_hh, saved, act], {"need_input": d.bool(),
                                                 "need_weights": d.bool(),
                                                 "need_states": d.bool()}


def _indices(d, v):
    shape = _shape(d, 0, 3)
    return d.rng.integers(-1 if d.pick((0, 0, 0, 1)) else 0, v + d.pick((0, 0, 0, 1)),
                          size=shape, dtype=np.int64)


def embedding_forward(d):
    v = d.size() or 1
    return [d.array((v, d.size()), _dtype(d)), _indices(d, v)], {}


def embedding_backward(d):
    v = d.size() or 1
    idx = _indices(d, v)
    return [d.array(idx.shape + (d.size(),), _dtype(d)), idx, v,
            d.pick((None, 0, v - 1, v, -1))], {}


# -- runtime -----------------------------------------------------------------------------------

def no_args(d):
    return [], {}


def empty_aligned(d):
    shape = [d.pick((0, 1, 3, 64, 2**16 + 1, 2**31 + 1, 2**62, -1)) for _ in range(d.int(0, 3))]
    dtype = d.pick((np.float32, np.float64, np.int8, np.complex128, np.bool_, object, "V0",
                    "S3", [("a", np.int32), ("b", np.float64)]))
    return [shape, np.dtype(dtype)], {}


def set_isa(d):
    return [d.pick(_core.supported_isas() + ["", "AVX2", "sse", "avx512 ", "x" * 1000])], {}


def set_num_threads(d):
    return [d.pick((1, 2, 3, 0, -1, 64))], {}


def measure_fma_peak_gflops(d):
    return [d.pick((1, 2, 3))], {"seconds": d.pick((0.0, -1.0, 1e-4, float("nan")))}


def _long_probe(a, k):
    # The probe runs as long as asked: more than a moment is not a malformed input but a wait.
    seconds = k.get("seconds", 0.2) if len(a) < 2 else a[1]
    return isinstance(seconds, (int, float)) and not seconds <= 0.01


def _restore_runtime(isa=_core.active_isa(), threads=_core.get_num_threads()):
    _core.set_isa(isa)
    _core.set_num_threads(threads)


def _t(name, family, build, outputs=(), **kw):
    return Target(name, family, getattr(_core, name), build, frozenset(outputs), **kw)


TARGETS = [
    _t("act_forward", "core-act", act_forward),
    _t("act_backward", "core-act", act_backward),
    _t("softmax_forward", "core-act", softmax_forward),
    _t("softmax_backward", "core-act", softmax_backward),
    _t("cross_entropy_forward", "core-loss", cross_entropy_forward),
    _t("cross_entropy_backward", "core-loss", cross_entropy_backward),
    _t("elementwise_loss_forward", "core-loss", elementwise_loss_forward),
    _t("elementwise_loss_backward", "core-loss", elementwise_loss_backward),
    _t("multiclass_hinge_forward", "core-loss", multiclass_hinge_forward),
    _t("multiclass_hinge_backward", "core-loss", multiclass_hinge_backward),
    _t("sgd_step", "core-optim", sgd_step, (0, 2)),
    _t("adam_step", "core-optim", adam_step, (0, 2, 3)),
    _t("adam_steps", "core-optim", adam_steps),
    _t("sum_of_squares", "core-optim", sum_of_squares),
    _t("gemm", "core-gemm", gemm, (2,)),
    _t("conv2d_forward", "core-conv", conv2d_forward),
    _t("conv2d_backward", "core-conv", conv2d_backward),
    _t("max_pool2d_forward", "core-pool", max_pool2d_forward),
    _t("max_pool2d_backward", "core-pool", max_pool2d_backward),
    _t("avg_pool2d_forward", "core-pool", avg_pool2d_forward),
    _t("avg_pool2d_backward", "core-pool", avg_pool2d_backward),
    _t("adaptive_avg_pool2d_forward", "core-pool", adaptive_avg_pool2d_forward),
    _t("adaptive_avg_pool2d_backward", "core-pool", adaptive_avg_pool2d_backward),
    _t("batch_norm_forward_train", "core-norm", batch_norm_forward_train),
    _t("batch_norm_forward_eval", "core-norm", batch_norm_forward_eval),
    _t("batch_norm_backward", "core-norm", batch_norm_backward),
    _t("knn_search", "core-knn", knn_search),
    _t("lstm_forward", "core-rnn", lstm_forward),
    _t("lstm_backward", "core-rnn", lstm_backward),
    _t("lstm_forward_embedded", "core-rnn", lstm_forward_embedded),
    _t("lstm_backward_embedded", "core-rnn", lstm_backward_embedded),
    _t("rnn_forward", "core-rnn", rnn_forward),
    _t("rnn_backward", "core-rnn", rnn_backward),
    _t("embedding_forward", "core-rnn", embedding_forward),
    _t("embedding_backward", "core-rnn", embedding_backward),
    _t("empty_aligned", "core-runtime", empty_aligned, deterministic=False),
    _t("cpu_features", "core-runtime", no_args),
    _t("build_info", "core-runtime", no_args),
    _t("supported_isas", "core-runtime", no_args),
    _t("active_isa", "core-runtime", no_args),
    _t("get_num_threads", "core-runtime", no_args),
    _t("set_isa", "core-runtime", set_isa, restore=_restore_runtime),
    _t("set_num_threads", "core-runtime", set_num_threads, restore=_restore_runtime),
    _t("measure_fma_peak_gflops", "core-runtime", measure_fma_peak_gflops, deterministic=False),
]


# ---------------------------------------------------------------------------------------------
# Known crashes, hangs and wrong errors in the C++ bindings, with reproducers (strict xfails in
# test_fuzz.py). Remove an entry when its reproducer passes.

def _not_array(v) -> bool:
    return v is not None and not isinstance(v, np.ndarray)


def huge_int(values, bound: int = 2**31) -> bool:
    """Whether an int of magnitude >= bound is among values (nested tuples and lists)."""
    for v in values:
        if isinstance(v, (tuple, list)):
            if huge_int(v, bound):
                return True
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(v) >= bound:
            return True
    return False


HEAD = "import numpy as np\nfrom nnx import _core\nf = np.float32\n"
# Before the call of a reproducer that hangs: exit (status 1) if it has not returned in 2 s,
# counting from the call, not from the start of the interpreter.
HANG_GUARD = "import faulthandler\nfaulthandler.dump_traceback_later(2.0, exit=True)\n"
# expect(f, ...): the call must raise ValueError or TypeError with a message (exit 0), not
# succeed, crash or hang.
EXPECT = ("def expect(f, *a, **k):\n"
          "    try:\n        f(*a, **k)\n"
          "    except (ValueError, TypeError, OverflowError) as e:\n        assert str(e)\n"
          "    else:\n        raise SystemExit('no error raised')\n")

# clean(f, ...): any result, or ValueError/TypeError with a message that is not the symptom of
# an object read as an array (a shape "()", a dtype "<NULL>").
CLEAN = ("def clean(f, *a, **k):\n"
         "    try:\n        f(*a, **k)\n"
         "    except (ValueError, TypeError) as e:\n"
         "        assert str(e) and '<NULL>' not in str(e) and 'got ()' not in str(e), e\n"
         "OBJECTS = (5, 'abc', [1.0, 2.0], [[1.0]], object(), {'a': 1})\n")

KNOWN = [
    KnownIssue(
        "object-as-array-conv2d", ("conv2d_forward",),
        "conv2d_forward takes its bias as py::object and casts it to py::array without checking; "
        "a non-array bias (a number, a list) is read as an array: segfault or a wrong error",
        lambda a, k: len(a) > 2 and _not_array(a[2]),
        HEAD + CLEAN + "for b in OBJECTS:\n    clean(_core.conv2d_forward, "
        "np.ones((1, 1, 3, 3), f), np.ones((1, 1, 2, 2), f), b, (1, 1), (0, 0), (1, 1))\n",
        fixed=True),
    KnownIssue(
        "object-as-array-gemm", ("gemm",),
        "gemm takes bias as py::object and casts it to py::array without checking: a list as "
        "bias segfaults",
        lambda a, k: _not_array(k.get("bias")),
        HEAD + CLEAN + "for b in OBJECTS:\n    clean(_core.gemm, np.ones((2, 2), f), "
        "np.ones((2, 2), f), np.ones((2, 2), f), bias=b, bias_mode='col')\n",
        fixed=True),
    KnownIssue(
        "object-as-array-sgd", ("sgd_step",),
        "sgd_step takes momentum_buffer as py::object and casts it to py::array without "
        "checking: a number segfaults, a list is read as an array of shape ()",
        lambda a, k: len(a) > 2 and _not_array(a[2]),
        HEAD + CLEAN + "for b in OBJECTS:\n    clean(_core.sgd_step, np.ones(3, f), "
        "np.ones(3, f), b, lr=0.1, momentum=0.9)\n",
        fixed=True),
    KnownIssue(
        "object-as-array-batch-norm",
        ("batch_norm_forward_train", "batch_norm_forward_eval", "batch_norm_backward"),
        "batch_norm_* take gamma/beta as py::object and cast them to py::array without checking "
        "(optional_vector): a string segfaults, a list gives a wrong error",
        lambda a, k: any(_not_array(a[i]) for i in {4: (1, 2), 6: (3, 4), 5: (2,)}[len(a)]),
        HEAD + CLEAN + "x = np.ones((2, 3), f)\nfor g in OBJECTS:\n"
        "    clean(_core.batch_norm_forward_train, x, g, None, 1e-5)\n"
        "    clean(_core.batch_norm_forward_eval, x, np.zeros(3, f), np.ones(3, f), None, g, 0.0)\n"
        "    clean(_core.batch_norm_backward, x, x, g, np.zeros(3, f), np.ones(3, f))\n",
        fixed=True),
    KnownIssue(
        "empty-aligned-object", ("empty_aligned",),
        "empty_aligned accepts dtypes holding Python objects and returns uninitialised memory "
        "as object pointers: reading an element segfaults",
        lambda a, k: np.dtype(a[1]).hasobject,
        HEAD + "try:\n    a = _core.empty_aligned([3], np.dtype(object))\n"
        "except (ValueError, TypeError) as e:\n    assert str(e)\nelse:\n    print(a)\n",
        fixed=True),
    KnownIssue(
        "cross-entropy-backward-target-shape", ("cross_entropy_backward",),
        "cross_entropy_backward does not check that a probability target has the shape of "
        "probs: a smaller target is read out of bounds (garbage or a segfault)",
        lambda a, k: (isinstance(a[2], np.ndarray) and a[2].ndim != 1
                      and isinstance(a[1], np.ndarray) and a[2].shape != a[1].shape),
        HEAD + EXPECT + "expect(_core.cross_entropy_backward, np.ones(4, f), "
        "np.ones((4, 10), f), np.ones((1, 1), f))\n",
        fixed=True),
    KnownIssue(
        "conv-geometry-overflow", ("conv2d_forward", "conv2d_backward"),
        "conv2d geometry overflows int64 for huge padding/stride/dilation (size + 2 * pad, "
        "dilation * (kernel - 1)): padding 2**63 - 1 gives a small output shape and the kernel "
        "writes out of bounds (heap corruption, abort); 2**62 gives an error naming a negative "
        "padded input",
        lambda a, k: huge_int(a[3:6]),
        HEAD + EXPECT + "expect(_core.conv2d_forward, np.ones((1, 2, 6, 5), f), "
        "np.ones((3, 2, 2, 2), f), None, (1, 1), (2**63 - 1, 2**63 - 1), (1, 1))\n",
        fixed=True),
    KnownIssue(
        "fma-probe-infinite-seconds", ("measure_fma_peak_gflops",),
        "measure_fma_peak_gflops(seconds=inf) never returns; non-finite or absurd durations "
        "should be rejected (the fuzzer also skips finite durations > 0.01 s, which only wait)",
        _long_probe,
        HEAD + EXPECT + HANG_GUARD + "expect(_core.measure_fma_peak_gflops, 1, float('inf'))\n",
        fixed=True),
    KnownIssue(
        "fma-probe-thread-count", ("measure_fma_peak_gflops",),
        "measure_fma_peak_gflops(num_threads=100000) starts that many OpenMP threads: under an "
        "address-space limit the thread creation fails and the process segfaults; an absurd "
        "count should be rejected",
        lambda a, k: huge_int(list(a[:1]) + [k.get("num_threads", 1)], 65),
        "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, hard))\n"
        + HEAD + EXPECT + "expect(_core.measure_fma_peak_gflops, 100000, 0.0)\n",
        fixed=True),
    KnownIssue(
        "max-pool-huge-window-hang", ("max_pool2d_forward",),
        "max_pool2d_forward never returns for a kernel of 2**32 x 2**32 with padding 2**31 on "
        "a 6 x 5 input (2**20 with padding 2**19 returns at once: a 32-bit overflow in the "
        "window loop?)",
        lambda a, k: huge_int(a[1:4], 2**16),
        HEAD + HANG_GUARD + "_core.max_pool2d_forward(np.ones((1, 2, 6, 5), f), (2**32, 2**32), "
        "(1, 1), (2**31, 2**31))\n",
        fixed=True),
    KnownIssue(
        "avg-pool-window-count-overflow", ("avg_pool2d_forward", "avg_pool2d_backward"),
        "avg_pool2d with count_include_pad divides by kernel_h * kernel_w computed with "
        "overflow: a 2**40 x 2**40 window gives inf instead of a tiny average",
        lambda a, k: huge_int(a[1:5], 2**16),
        HEAD + "y = _core.avg_pool2d_forward(np.ones((1, 1, 3, 3), f), (2**40, 2**40), "
        "(1, 1), (2**39, 2**39), True)\nassert np.isfinite(y).all(), y\n",
        fixed=True),
]
