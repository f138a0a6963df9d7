"""Fuzz targets for the public Python API (see ``fuzz_worker``): the functions of ``nnx`` and
``nnx.nn.functional``, every public ``Tensor`` method plus indexing, every ``nnx.nn`` module
and the optimizers.

Tensor arguments are drawn as ``TArg`` (an array plus requires_grad) so that the mutations of
``fuzz_worker`` apply to their data; they become Tensors inside the call, so that a failing
conversion is part of what is tested. A call that returns a Tensor needing grad is followed by
a backward pass, which runs the backward kernels on the same inputs.
"""

from __future__ import annotations

import numpy as np
from fuzz_core_targets import HANG_GUARD, huge_int
from fuzz_inputs import TArg
from fuzz_worker import KnownIssue, Target

import nnx
import nnx.nn as nn
import nnx.nn.functional as F
from nnx import optim
from nnx.tensor import Tensor


def _dtype(d):
    return d.pick((np.float32, np.float64))


def _shape(d, lo=0, hi=4):
    return tuple(d.size() for _ in range(d.int(lo, hi)))


def _t(d, shape, dtype=np.float32, grad=None):
    return TArg(d.array(shape, dtype), d.bool() if grad is None else grad)


def _labels(d, n, c):
    return TArg(d.rng.integers(0, max(c, 1), n).astype(np.int64), False)


def materialize(v):
    if isinstance(v, TArg):
        return nnx.tensor(v.array, requires_grad=v.requires_grad)
    if isinstance(v, list):
        return [materialize(x) for x in v]
    return v


def _backward(out) -> None:
    if isinstance(out, tuple) and out:
        out = out[0]
    if isinstance(out, Tensor) and out.requires_grad and out.dtype.kind == "f" and out.numel():
        out.sum().backward()


def call_function(fn, args, kwargs):
    out = fn(*[materialize(a) for a in args], **{k: materialize(v) for k, v in kwargs.items()})
    _backward(out)
    return out


# ---------------------------------------------------------------------------------------------
# nnx.nn.functional

def unary(d):
    return [_t(d, _shape(d), _dtype(d))], {}


def with_slope(d):
    return [_t(d, _shape(d), _dtype(d)), d.float(-1, 2)], {}


def along_dim(d):
    shape = _shape(d, 1)
    return [_t(d, shape, _dtype(d)), d.int(-len(shape), len(shape) - 1)], {}


def linear(d):
    n, i, o, dt = d.size(), d.size(), d.size(), _dtype(d)
    bias = _t(d, (o,), dt) if d.bool() else None
    return [_t(d, (n, i), dt), _t(d, (o, i), dt), bias], {}


def pointwise_loss(d):
    shape, dt = _shape(d), _dtype(d)
    return [_t(d, shape, dt), _t(d, shape, dt, False)], {"reduction": d.pick(F.REDUCTIONS)}


def cross_entropy(d):
    n, c, dt = d.size(), d.size(), _dtype(d)
    target = _labels(d, n, c) if d.bool() else TArg(np.full((n, c), 1.0 / max(c, 1), dt), False)
    return [_t(d, (n, c), dt), target], {"reduction": d.pick(F.REDUCTIONS),
                                          "label_smoothing": d.float(0, 1)}


def nll_loss(d):
    n, c, dt = d.size(), d.size(), _dtype(d)
    return [_t(d, (n, c), dt), _labels(d, n, c)], {"reduction": d.pick(F.REDUCTIONS)}


def hinge(d):
    n, c, dt = d.size(), d.size(), _dtype(d)
    return [_t(d, (n, c), dt), _labels(d, n, c)], {"margin": d.float(-1, 2),
                                                   "reduction": d.pick(F.REDUCTIONS)}


def dropout(d):
    return [_t(d, _shape(d, 0, 4) if d.bool() else (2, 3, 4, 4), _dtype(d))], \
        {"p": d.pick((0.0, 0.5, 1.0)), "training": d.bool()}


def one_hot(d):
    n, c = d.size(), d.size()
    return [_labels(d, n, c)], {"num_classes": d.pick((-1, c, c + 1))}


def _window(d):
    return d.pick((1, 2, 3, (1, 2), (2, 1)))


def conv2d(d):
    n, c, k, dt = d.size(), d.pick((1, 2, 3)), d.pick((1, 2, 4)), _dtype(d)
    x = _t(d, (n, c, d.pick((1, 3, 6)), d.pick((1, 4, 7))), dt)
    w = _t(d, (k, c, d.pick((1, 2, 3)), d.pick((1, 3))), dt)
    b = _t(d, (k,), dt) if d.bool() else None
    return [x, w, b], {"stride": _window(d), "padding": d.pick((0, 1, (1, 0))),
                       "dilation": d.pick((1, 2)), "groups": 1}


def conv1d(d):
    n, c, k, dt = d.size(), d.pick((1, 2, 3)), d.pick((1, 2, 4)), _dtype(d)
    x = _t(d, (n, c, d.pick((1, 3, 8))), dt)
    w = _t(d, (k, c, d.pick((1, 2, 3))), dt)
    b = _t(d, (k,), dt) if d.bool() else None
    return [x, w, b], {"stride": d.pick((1, 2)), "padding": d.pick((0, 1)),
                       "dilation": d.pick((1, 2))}


def pool2d(d):
    x = _t(d, (d.size(), d.size(), d.pick((1, 2, 5, 8)), d.pick((1, 3, 6))), _dtype(d))
    return [x, _window(d)], {"stride": d.pick((None, 1, 2, (2, 1))), "padding": d.pick((0, 1))}


def max_pool2d(d):
    args, kwargs = pool2d(d)
    kwargs["return_indices"] = d.bool()
    return args, kwargs


def pool1d(d):
    x = _t(d, (d.size(), d.size(), d.pick((1, 2, 5, 8))), _dtype(d))
    return [x, d.pick((1, 2, 3))], {"stride": d.pick((None, 1, 2)), "padding": d.pick((0, 1))}


def adaptive_pool(d):
    x = _t(d, (d.size(), d.size(), d.pick((1, 2, 5, 8)), d.pick((1, 3, 6))), _dtype(d))
    return [x, d.pick((1, 2, (2, 3), (7, 1)))], {}


def batch_norm(d):
    shape, dt = (d.size(), d.pick((1, 2, 3))) + _shape(d, 0, 2), _dtype(d)
    c = shape[1]
    stats = d.bool()
    rm = TArg(np.zeros(c, dt), False) if stats else None
    rv = TArg(np.ones(c, dt), False) if stats else None
    w = _t(d, (c,), dt) if d.bool() else None
    b = _t(d, (c,), dt) if d.bool() else None
    return [_t(d, shape, dt), rm, rv, w, b], {"training": d.bool(), "momentum": 0.1,
                                              "eps": d.pick((1e-5, 0.0))}


def adaptive_max_pool1d(d):
    x = _t(d, (d.size(), d.size(), d.pick((1, 2, 5, 8))), _dtype(d))
    return [x, d.pick((1, 2, 3, 9))], {"return_indices": d.bool()}


def embedding(d):
    v, dim = d.pick((1, 3, 7)), d.pick((1, 2, 4))
    idx = TArg(d.rng.integers(0, v, (d.size(), d.size())).astype(np.int64), False)
    return [idx, _t(d, (v, dim), _dtype(d))], {"padding_idx": d.pick((None, 0, -1))}


FUNCTIONAL = {
    "relu": unary, "sigmoid": unary, "tanh": unary, "softplus": unary, "hardsigmoid": unary,
    "leaky_relu": with_slope, "elu": with_slope, "softmax": along_dim, "log_softmax": along_dim,
    "linear": linear, "mse_loss": pointwise_loss, "l1_loss": pointwise_loss,
    "binary_cross_entropy_with_logits": pointwise_loss, "cross_entropy": cross_entropy,
    "nll_loss": nll_loss, "multiclass_hinge_loss": hinge, "dropout": dropout,
    "dropout2d": dropout, "one_hot": one_hot, "conv2d": conv2d, "conv1d": conv1d,
    "max_pool2d": max_pool2d, "avg_pool2d": pool2d, "max_pool1d": pool1d, "avg_pool1d": pool1d,
    "adaptive_avg_pool2d": adaptive_pool, "batch_norm": batch_norm,
    "adaptive_max_pool1d": adaptive_max_pool1d, "embedding": embedding,
}
RANDOM = {"dropout", "dropout2d"}

# ---------------------------------------------------------------------------------------------
# Tensor methods: (self, arguments...)


def _self(d, lo=0):
    return _t(d, _shape(d, lo), d.pick((np.float32, np.float64, np.float32, np.int64)))


def _dim(d, ndim=3):
    return d.int(-ndim - 1, ndim)


def _other(d):
    return d.pick((0, 1, 2.5, -1.0)) if d.bool() else _t(d, _shape(d, 0, 2), _dtype(d))


METHOD_ARGS = {
    "add": lambda d: [_other(d)], "sub": lambda d: [_other(d)], "mul": lambda d: [_other(d)],
    "div": lambda d: [_other(d)], "pow": lambda d: [d.pick((2, 0.5, -1, 3.0))],
    "eq": lambda d: [_other(d)], "ne": lambda d: [_other(d)], "lt": lambda d: [_other(d)],
    "le": lambda d: [_other(d)], "gt": lambda d: [_other(d)], "ge": lambda d: [_other(d)],
    "matmul": lambda d: [_t(d, _shape(d, 1, 3), _dtype(d))],
    "add_": lambda d: [_other(d)], "sub_": lambda d: [_other(d)],
    "mul_": lambda d: [_other(d)], "div_": lambda d: [_other(d)],
    "fill_": lambda d: [d.pick((0.0, 1, float("nan")))],
    "copy_": lambda d: [_t(d, _shape(d, 0, 2), _dtype(d), False)],
    "normal_": lambda d: [d.float(-1, 1), d.float(0, 2)],
    "uniform_": lambda d: [d.float(-1, 0), d.float(0, 1)],
    "clamp": lambda d: [d.pick((None, -1.0, 0)), d.pick((None, 1.0, 0.5))],
    "clip": lambda d: [d.pick((None, -1.0)), d.pick((None, 1.0))],
    "sum": lambda d: [d.pick((None, 0, -1, (0, 1)))], "mean": lambda d: [d.pick((None, 0, -1))],
    "max": lambda d: [d.pick((None, 0, -1))], "min": lambda d: [d.pick((None, 0, 1))],
    "argmax": lambda d: [d.pick((None, 0, -1))], "argmin": lambda d: [d.pick((None, 0, 1))],
    "softmax": lambda d: [_dim(d)], "log_softmax": lambda d: [_dim(d)],
    "reshape": lambda d: [d.pick((-1, (2, -1), (0,), (1, 1, -1), ()))],
    "view": lambda d: [d.pick((-1, (2, -1), (0,), (1, -1)))],
    "view_as": lambda d: [_t(d, _shape(d), np.float32, False)],
    "permute": lambda d: list(d.pick(((0,), (1, 0), (0, 2, 1), (2, 1, 0, 3)))),
    "transpose": lambda d: [_dim(d), _dim(d)], "flatten": lambda d: [_dim(d), _dim(d)],
    "squeeze": lambda d: [d.pick((None, 0, -1))], "unsqueeze": lambda d: [_dim(d)],
    "to": lambda d: [d.pick((np.float64, np.int32, "float32", np.bool_))],
    "size": lambda d: [d.pick((None, 0, -1))], "backward": lambda d: [d.pick((None, 1.0))],
    "requires_grad_": lambda d: [d.bool()],
}
NO_ARGS = ("abs", "clone", "contiguous", "cpu", "detach", "dim", "double", "exp", "float",
           "item", "log", "long", "neg", "numel", "numpy", "relu", "retain_grad", "sigmoid",
           "sqrt", "t", "tanh", "tolist", "zero_")
INPLACE = {"add_", "sub_", "mul_", "div_", "fill_", "copy_", "normal_", "uniform_", "zero_",
           "__setitem__"}


def _method_builder(name):
    extra = METHOD_ARGS.get(name, lambda d: [])

    def build(d):
        rest = [a for a in extra(d)]
        while rest and rest[-1] is None and name not in ("clamp", "clip"):
            rest.pop()
        return [_self(d)] + rest, {}
    return build


def _index_key(d):
    return d.pick((0, -1, 5, -7, slice(None), slice(1, None, 2), slice(None, None, -1), None,
                   Ellipsis, (0, 0), (slice(None), 0), (0, 0, 0, 0, 0),
                   np.array([0, 1]), np.array([True, False]), np.array([], np.int64),
                   np.array([2**40]), 1.5, "a", [0, -1]))


def getitem(d):
    return [_self(d), _index_key(d)], {}


def setitem(d):
    return [_self(d), _index_key(d), d.pick((0.0, 1, float("inf")))], {}


def call_method(name):
    def call(fn, args, kwargs):
        this = materialize(args[0])
        out = getattr(this, name)(*[materialize(a) for a in args[1:]],
                                  **{k: materialize(v) for k, v in kwargs.items()})
        if name != "backward":
            _backward(out)
        return out
    return call


# ---------------------------------------------------------------------------------------------
# nnx functions

_SIZES = (0, 1, 3)


def sizes(d):
    return [d.pick(_SIZES) for _ in range(d.int(0, 3))], {"dtype": d.pick((np.float32,
                                                                                np.float64))}


def like(d):
    return [_self(d)], {}


def full(d):
    return [tuple(d.pick(_SIZES) for _ in range(d.int(0, 3))), d.pick((0.0, 2, -1.5))], {}


def full_like(d):
    return [_self(d), d.pick((0.0, 2, -1.5))], {}


def tensor_ctor(d):
    return [d.array(_shape(d), d.pick((np.float32, np.float64, np.int64, np.bool_)))], \
        {"dtype": d.pick((None, np.float32, np.float64, np.int64)), "requires_grad": d.bool()}


def from_numpy(d):
    return [d.array(_shape(d), _dtype(d))], {}


def arange(d):
    return [d.pick((0, 1, 2.5, -3))], {"end": d.pick((None, 5, 10.0)), "step": d.pick((1, 2, 0.5))}


def eye(d):
    return [d.pick((0, 1, 3))], {"m": d.pick((None, 2))}


def randint(d):
    return [d.pick((0, 2))], {"high": d.pick((None, 5, 10)), "size": d.pick(((), (3,), (2, 2)))}


def randperm(d):
    return [d.pick((0, 1, 5))], {}


def tensors_list(d):
    shape, dt = _shape(d, 1, 3), _dtype(d)
    return [[_t(d, shape, dt) for _ in range(d.int(1, 3))]], {"dim": _dim(d, len(shape))}


def where(d):
    shape = _shape(d, 0, 3)
    cond = TArg(d.rng.random(shape) < 0.5, False)
    return [cond, _t(d, shape), _t(d, shape)], {}


def gemm_api(d):
    m, n, k, dt = d.size(), d.size(), d.size(), _dtype(d)
    return [d.array((m, k), dt), d.array((k, n), dt)], {
        "alpha": d.float(-2, 2), "trans_a": False, "relu": d.bool()}


def matmul(d):
    dt = _dtype(d)
    k = d.size()
    return [_t(d, _shape(d, 0, 2) + (k,), dt), _t(d, (k,) + _shape(d, 0, 1), dt)], {}


def seed(d):
    return [d.pick((0, 1, 2**32, 123456789))], {}


def rng_state(d):
    return [nnx.get_rng_state()], {}


def threads(d):
    return [d.pick((1, 2))], {}


def grad_mode(d):
    return [d.bool()], {}


def no_args(d):
    return [], {}


# Paths relative to the worker's scratch directory (its working directory).


def save(d):
    obj = d.pick(({"w": np.ones(3, np.float32)}, [1, 2.5, None, "s"], (np.zeros((0, 2)),),
                  {1: np.arange(3)}, np.float32(2)))
    return [obj, "ckpt.npz"], {}


def load(d):
    path = f"junk{d.int(0, 3)}.npz"
    with open(path, "wb") as f:
        f.write(bytes(d.rng.integers(0, 256, d.pick((0, 1, 22, 100))).astype(np.uint8)))
    return [path], {}


def save_model(d):
    model = d.pick((nn.Sequential(nn.Linear(3, 2), nn.ReLU()), nn.Linear(2, 2),
                    nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), nn.LSTM(2, 3), 3, "x"))
    return [model, "model.npz"], {"metadata": d.pick((None, {"mean": 0.5}, [1, 2], "m"))}


def enter_context(fn, args, kwargs):
    manager = fn(*[materialize(a) for a in args], **kwargs)
    if hasattr(manager, "__enter__"):
        with manager:
            pass
    return None


def _restore(threads=nnx.get_num_threads()):
    nnx.set_grad_enabled(True)
    nnx.set_num_threads(threads)


TOP = {
    "tensor": tensor_ctor, "Tensor": tensor_ctor, "from_numpy": from_numpy, "zeros": sizes,
    "ones": sizes, "empty": sizes, "rand": sizes, "randn": sizes, "full": full,
    "zeros_like": like, "ones_like": like, "full_like": full_like, "arange": arange,
    "eye": eye, "randint": randint, "randperm": randperm, "cat": tensors_list,
    "stack": tensors_list, "where": where, "gemm": gemm_api, "matmul": matmul,
    "manual_seed": seed, "get_rng_state": no_args, "set_rng_state": rng_state,
    "initial_seed": no_args, "info": no_args, "get_num_threads": no_args,
    "set_num_threads": threads, "num_threads": threads, "no_grad": no_args,
    "enable_grad": no_args, "set_grad_enabled": grad_mode, "is_grad_enabled": no_args,
    "save": save, "load": load, "save_model": save_model, "load_model": load,
    "get_include": no_args, "get_cmake_dir": no_args,
}
# File functions may fail with OSError: a junk file, or no C++ library in a source tree.
FILES = {"save", "load", "save_model", "load_model", "get_include", "get_cmake_dir"}
TOP_RANDOM = {"empty", "rand", "randn", "randint", "randperm"}
CONTEXTS = {"no_grad", "enable_grad", "set_grad_enabled", "num_threads"}


# ---------------------------------------------------------------------------------------------
# Modules and optimizers: constructor arguments, then "__input__"/"__target__" for forward.

def _image(d, c=None):
    return _t(d, (d.size(), c or d.pick((1, 2, 3)), d.pick((1, 4, 6)), d.pick((1, 5))),
              np.float32)


def _act_module(d):
    return [], {"__input__": _t(d, _shape(d), np.float32)}


MODULES = {
    "Linear": lambda d: ([3, d.pick((1, 2))], {"__input__": _t(d, (d.size(), 3))}),
    "Conv2d": lambda d: ([2, d.pick((1, 3)), d.pick((1, 2, 3))],
                         {"stride": d.pick((1, 2)), "padding": d.pick((0, 1)),
                          "__input__": _image(d, 2)}),
    "Conv1d": lambda d: ([2, 3, d.pick((1, 2))],
                         {"__input__": _t(d, (d.size(), 2, d.pick((1, 4))))}),
    "MaxPool2d": lambda d: ([d.pick((1, 2, 3))], {"__input__": _image(d)}),
    "AvgPool2d": lambda d: ([d.pick((1, 2, 3))], {"padding": d.pick((0, 1)),
                                                  "__input__": _image(d)}),
    "MaxPool1d": lambda d: ([d.pick((1, 2))], {"__input__": _t(d, (2, 3, d.pick((1, 5))))}),
    "AvgPool1d": lambda d: ([d.pick((1, 2))], {"__input__": _t(d, (2, 3, d.pick((1, 5))))}),
    "AdaptiveAvgPool2d": lambda d: ([d.pick((1, 2, (3, 1)))], {"__input__": _image(d)}),
    "BatchNorm1d": lambda d: ([3], {"__input__": _t(d, (d.pick((1, 2, 5)), 3))}),
    "BatchNorm2d": lambda d: ([2], {"__input__": _image(d, 2)}),
    "Dropout": lambda d: ([d.pick((0.0, 0.5))], {"__input__": _t(d, _shape(d))}),
    "Dropout2d": lambda d: ([d.pick((0.0, 0.5))], {"__input__": _image(d)}),
    "ELU": lambda d: ([1.0], {"__input__": _t(d, _shape(d))}),
    "LeakyReLU": lambda d: ([0.1], {"__input__": _t(d, _shape(d))}),
    "Softmax": lambda d: ([_dim(d, 2)], {"__input__": _t(d, _shape(d, 1))}),
    "LogSoftmax": lambda d: ([_dim(d, 2)], {"__input__": _t(d, _shape(d, 1))}),
    "Flatten": lambda d: ([d.pick((0, 1))], {"__input__": _t(d, _shape(d))}),
    "Identity": _act_module, "ReLU": _act_module, "Sigmoid": _act_module, "Tanh": _act_module,
    "Softplus": _act_module, "Hardsigmoid": _act_module,
    "Sequential": lambda d: ([nn.Linear(2, 2), nn.ReLU()], {"__input__": _t(d, (d.size(), 2))}),
    "ModuleList": lambda d: ([[nn.Linear(2, 2)]], {}),
    "Module": lambda d: ([], {}),
    "Parameter": lambda d: ([d.array(_shape(d), _dtype(d))], {}),
    "AdaptiveMaxPool1d": lambda d: ([d.pick((1, 2, 5))],
                                    {"__input__": _t(d, (2, 3, d.pick((1, 4, 6))))}),
    "Embedding": lambda d: ([5, 3], {"padding_idx": d.pick((None, 0)), "__input__": TArg(
        d.rng.integers(0, 5, (d.size(), d.size())).astype(np.int64), False)}),
    "RNN": lambda d: _recurrent(d, True),
    "LSTM": lambda d: _recurrent(d, True),
    "RNNCell": lambda d: _recurrent(d, False),
    "LSTMCell": lambda d: _recurrent(d, False),
    "MSELoss": lambda d: ([], _loss_inputs(d, False)),
    "L1Loss": lambda d: ([], _loss_inputs(d, False)),
    "BCEWithLogitsLoss": lambda d: ([], _loss_inputs(d, False)),
    "CrossEntropyLoss": lambda d: ([], _loss_inputs(d, True)),
    "MultiClassHingeLoss": lambda d: ([], _loss_inputs(d, True)),
}
MODULE_RANDOM = {"Dropout", "Dropout2d"}


def _recurrent(d, sequence):
    n, size, hidden = d.size(), 3, d.pick((1, 2))
    if sequence:
        x = _t(d, (d.pick((1, 2, 4)), n, size), np.float32)
        return [size, hidden], {"num_layers": d.pick((1, 2)), "bidirectional": d.bool(),
                                "__input__": x}
    return [size, hidden], {"__input__": _t(d, (n, size), np.float32)}


def _loss_inputs(d, classes):
    n, c = d.size(), d.pick((1, 3))
    target = _labels(d, n, c) if classes else _t(d, (n, c), np.float32, False)
    return {"reduction": d.pick(F.REDUCTIONS), "__input__": _t(d, (n, c), np.float32),
            "__target__": target}


def call_module(cls, args, kwargs):
    kwargs = dict(kwargs)
    x = kwargs.pop("__input__", None)
    target = kwargs.pop("__target__", None)
    module = cls(*args, **kwargs)
    if x is None:
        return repr(module)
    inputs = [materialize(x)] + ([materialize(target)] if target is not None else [])
    out = module(*inputs)
    _backward(out)
    return out


def optimizer(d):
    params = [_t(d, _shape(d, 1, 2), np.float32, True) for _ in range(d.int(1, 2))]
    return [params], {"lr": d.float(0, 1), "weight_decay": d.pick((0.0, 0.01)),
                      "__grad__": d.pick(("normal", "nan", "none", "wrong-shape"))}


def call_optimizer(cls, args, kwargs):
    kwargs = dict(kwargs)
    grads = kwargs.pop("__grad__", "normal")
    params = materialize(args[0]) if isinstance(args[0], list) else args[0]
    if isinstance(params, list):
        params = [nn.Parameter(p.data) if isinstance(p, Tensor) and p.dtype.kind == "f" else p
                  for p in params]
    opt = cls(params, *args[1:], **kwargs)
    for p in (params if isinstance(params, list) else []):
        if not isinstance(p, Tensor):
            continue
        if grads == "normal":
            p.grad = nnx.tensor(np.ones_like(p.data))
        elif grads == "nan":
            p.grad = nnx.tensor(np.full_like(p.data, np.nan))
        elif grads == "wrong-shape":
            p.grad = nnx.tensor(np.ones(p.data.shape + (2,), p.dtype))
    opt.step()
    opt.step()
    opt.load_state_dict(opt.state_dict())
    opt.zero_grad()
    return [p.data.copy() for p in params if isinstance(p, Tensor)]


OPTIMIZERS = {"SGD": optimizer, "Adam": optimizer, "AdamW": optimizer}


# ---------------------------------------------------------------------------------------------

def _public_methods():
    return sorted(n for n in dir(Tensor) if not n.startswith("_")
                  and callable(getattr(Tensor, n)))


def _build_targets():
    targets = []
    for name, build in FUNCTIONAL.items():
        outputs = frozenset({1, 2}) if name == "batch_norm" else frozenset()
        targets.append(Target(f"F.{name}", "api-functional", getattr(F, name), build, outputs,
                              call=call_function, deterministic=name not in RANDOM,
                              compare_outputs=False))
    for name in _public_methods():
        targets.append(Target(f"Tensor.{name}", "api-tensor", getattr(Tensor, name),
                              _method_builder(name), frozenset({0} if name in INPLACE else ()),
                              call=call_method(name), keep_tensor=frozenset({0}),
                              compare_outputs=False,
                              deterministic=name not in ("normal_", "uniform_")))
    targets.append(Target("Tensor.__getitem__", "api-tensor", Tensor.__getitem__, getitem,
                          call=call_method("__getitem__"), keep_tensor=frozenset({0})))
    targets.append(Target("Tensor.__setitem__", "api-tensor", Tensor.__setitem__, setitem,
                          frozenset({0}), call=call_method("__setitem__"),
                          keep_tensor=frozenset({0}), compare_outputs=False))
    for name, build in TOP.items():
        targets.append(Target(f"nnx.{name}", "api-nnx", getattr(nnx, name), build,
                              call=enter_context if name in CONTEXTS else call_function,
                              restore=_restore, deterministic=name not in TOP_RANDOM,
                              also_accepted=(OSError,) if name in FILES else ()))
    for name, build in MODULES.items():
        targets.append(Target(f"nn.{name}", "api-modules", getattr(nn, name), build,
                              call=call_module, deterministic=False))
    for name, build in OPTIMIZERS.items():
        targets.append(Target(f"optim.{name}", "api-optim", getattr(optim, name), build,
                              frozenset({0}), call=call_optimizer, compare_outputs=False))
    return targets


TARGETS = _build_targets()


def _geometry(a, k, bound=2**31):
    return huge_int(list(a) + list(k.values()), bound)


_HEAD = "import nnx\nimport nnx.nn.functional as F\n"

# The C++ bugs of fuzz_core_targets.KNOWN, reached through the Python API.
KNOWN = [
    KnownIssue(
        "conv-geometry-overflow-api", ("F.conv2d", "F.conv1d", "nn.Conv2d", "nn.Conv1d"),
        "see conv-geometry-overflow: nnx.nn.functional.conv2d passes a huge padding on to the "
        "kernel, which writes out of bounds",
        _geometry,
        _HEAD + "x, w = nnx.ones(1, 2, 6, 5), nnx.ones(3, 2, 2, 2)\n"
        "try:\n    F.conv2d(x, w, padding=2**63 - 1)\nexcept (ValueError, OverflowError) as e:\n"
        "    assert str(e)\nelse:\n    raise SystemExit('no error raised')\n",
        fixed=True),
    KnownIssue(
        "pool-huge-window-api",
        ("F.max_pool2d", "F.max_pool1d", "F.avg_pool2d", "F.avg_pool1d", "nn.MaxPool2d",
         "nn.MaxPool1d", "nn.AvgPool2d", "nn.AvgPool1d"),
        "see max-pool-huge-window-hang and avg-pool-window-count-overflow, through "
        "nnx.nn.functional",
        lambda a, k: _geometry(a, k, 2**16),
        _HEAD + HANG_GUARD + "F.max_pool2d(nnx.ones(1, 2, 6, 5), 2**32, stride=1, "
        "padding=2**31)\n",
        fixed=True),
    KnownIssue(
        "adaptive-max-pool1d-empty-loop", ("F.adaptive_max_pool1d", "nn.AdaptiveMaxPool1d"),
        "adaptive_max_pool1d loops in Python over the output size: an empty batch with "
        "output_size 2**32 + 1 allocates nothing and then spins for hours (a Python-layer "
        "issue in nnx._kernels.adaptive_max_pool1d_forward)",
        lambda a, k: _geometry(a, k, 2**16),
        _HEAD + HANG_GUARD + "F.adaptive_max_pool1d(nnx.zeros(0, 3, 5), 2**32 + 1)\n",
        fixed=True),
    KnownIssue(
        "recurrent-empty-batch-long-sequence", ("nn.RNN", "nn.LSTM"),
        "nn.RNN/nn.LSTM step through the sequence in Python: an empty batch with 2**31 time "
        "steps (an input of no elements) runs 2**31 GEMM calls instead of returning at once "
        "(a Python-layer issue in nnx._kernels.rnn_forward/lstm_forward)",
        lambda a, k: any(isinstance(v, TArg) and isinstance(v.array, np.ndarray)
                         and v.array.size == 0 and huge_int(v.array.shape, 2**16)
                         for v in k.values()),
        _HEAD + "import numpy as np\nx = nnx.tensor(np.empty((2**31, 0, 3), np.float32))\n"
        + HANG_GUARD + "nnx.nn.RNN(3, 2)(x)\n",
        fixed=True),
    KnownIssue(
        "recurrent-huge-num-layers", ("nn.RNN", "nn.LSTM"),
        "nn.RNN/nn.LSTM accept num_layers=2**31 - 1 and build layer after layer until memory "
        "runs out (about 30 s, then a MemoryError without a message); an absurd count should "
        "be rejected up front (a Python-layer issue)",
        lambda a, k: huge_int(list(a[2:3]) + [k.get("num_layers", 1)], 2**16),
        _HEAD + HANG_GUARD + "try:\n    nnx.nn.LSTM(3, 2, num_layers=2**31 - 1)\n"
        "except (ValueError, OverflowError) as e:\n    assert str(e), repr(e)\n"
        "else:\n    raise SystemExit('no error raised')\n",
        fixed=True),
]
