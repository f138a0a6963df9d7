"""Model files: the layers of a ``Sequential`` and its weights in one checkpoint, which
``load_model`` rebuilds without the model's code and the C++ runtime (``nnx::Model``, see
docs/cpp.md) runs.

``nnx.save(model.state_dict(), path)`` keeps the weights only. ``save_model(model, path)``
writes an ordinary nnx checkpoint (``nnx.load`` reads it) whose root also describes the layers::

    {"format": "nnx-model", "version": 1,
     "layers": [{"type": "Conv2d", "name": "conv1", "in_channels": 1, "out_channels": 6,
                 "kernel_size": [5, 5], "stride": [1, 1], "padding": [2, 2],
                 "dilation": [1, 1], "bias": true,
                 "params": {"weight": "conv1.weight", "bias": "conv1.bias"}},
                {"type": "ReLU", "name": "act1", "params": {}}, ...],
     "state_dict": {...},   # the Sequential's state_dict()
     "metadata": {...}}     # save_model's metadata: e.g. the input normalisation

Each layer entry holds the module's class name, its name in the Sequential, the arguments that
define it (pairs as [height, width]) and under ``params`` the state-dict key of each array.
The layers a model file can hold: Linear, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
BatchNorm1d/2d (with running statistics), Flatten, ReLU, Sigmoid, Tanh, Softplus, Hardsigmoid,
LeakyReLU, ELU, Softmax, LogSoftmax, Dropout, Dropout2d, Identity, and a unidirectional LSTM
wrapped in ``LSTMOutput`` (an LSTM returns a tuple, which the next layer of a Sequential could
not take).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

import nnx.io
from nnx.nn import modules as M

__all__ = ["FORMAT", "VERSION", "LSTMOutput", "load_model", "save_model"]

FORMAT = "nnx-model"
VERSION = 1


class LSTMOutput(M.Module):
    """Runs an ``nn.LSTM`` and returns its output sequence only (the final states are dropped),
    so that an LSTM can be a step of a ``Sequential``; e.g. reading (N, 1, 28, 28) images row by
    row: ``Sequential(Flatten(1, 2), LSTMOutput(LSTM(28, 64, batch_first=True)), Flatten(),
    Linear(28 * 64, 10))``."""

    def __init__(self, lstm: M.LSTM):
        super().__init__()
        if not isinstance(lstm, M.LSTM):
            raise TypeError(f"LSTMOutput: expected an nn.LSTM, got {type(lstm).__name__}")
        self.lstm = lstm

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return self.lstm(input)[0]


def _pair(value) -> list:
    if isinstance(value, (tuple, list)):
        return [None if v is None else int(v) for v in value]
    return [int(value), int(value)]


def _pool(m) -> dict:
    return {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
            "padding": _pair(m.padding)}


def _batch_norm(m) -> dict:
    if m.running_mean is None:
        raise ValueError(f"save_model: {type(m).__name__} without running statistics "
                         "(track_running_stats=False) normalises with each batch's statistics "
                         "in eval mode; model files hold only batch norms with running statistics")
    return {"num_features": m.num_features, "eps": float(m.eps), "affine": m.affine,
            "bias": m.bias is not None}


def _lstm(m) -> dict:
    lstm = m.lstm
    if lstm.bidirectional:
        raise ValueError("save_model: bidirectional LSTMs are not supported in model files")
    return {"input_size": lstm.input_size, "hidden_size": lstm.hidden_size,
            "num_layers": lstm.num_layers, "bias": lstm.bias, "batch_first": lstm.batch_first}


# Module class -> (type written to the file, the arguments that define it).
_DESCRIBE = {
    M.Linear: ("Linear", lambda m: {"in_features": m.in_features,
                                    "out_features": m.out_features, "bias": m.bias is not None}),
    M.Conv2d: ("Conv2d", lambda m: {
        "in_channels": m.in_channels, "out_channels": m.out_channels,
        "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
        "padding": _pair(m.padding), "dilation": _pair(m.dilation), "bias": m.bias is not None}),
    M.MaxPool2d: ("MaxPool2d", _pool),
    M.AvgPool2d: ("AvgPool2d", lambda m: {**_pool(m), "count_include_pad": m.count_include_pad}),
    M.AdaptiveAvgPool2d: ("AdaptiveAvgPool2d", lambda m: {"output_size": _pair(m.output_size)}),
    M.BatchNorm1d: ("BatchNorm1d", _batch_norm),
    M.BatchNorm2d: ("BatchNorm2d", _batch_norm),
    M.Flatten: ("Flatten", lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    M.ReLU: ("ReLU", lambda m: {}),
    M.Sigmoid: ("Sigmoid", lambda m: {}),
    M.Tanh: ("Tanh", lambda m: {}),
    M.Softplus: ("Softplus", lambda m: {}),
    M.Hardsigmoid: ("Hardsigmoid", lambda m: {}),
    M.LeakyReLU: ("LeakyReLU", lambda m: {"negative_slope": m.negative_slope}),
    M.ELU: ("ELU", lambda m: {"alpha": m.alpha}),
    M.Softmax: ("Softmax", lambda m: {"dim": m.dim}),
    M.LogSoftmax: ("LogSoftmax", lambda m: {"dim": m.dim}),
    M.Dropout: ("Dropout", lambda m: {"p": m.p}),
    M.Dropout2d: ("Dropout2d", lambda m: {"p": m.p}),
    M.Identity: ("Identity", lambda m: {}),
    LSTMOutput: ("LSTM", _lstm),
}


def _describe(name: str, module, state: dict) -> dict:
    # The exact class: a subclass may compute something else than the layer the file names.
    entry = _DESCRIBE.get(type(module))
    if entry is None:
        known = ", ".join(sorted(cls.__name__ for cls in _DESCRIBE))
        raise TypeError(f"save_model: layer {name!r} is a {type(module).__name__}, which model "
                        f"files cannot describe; they hold {known}")
    kind, arguments = entry
    params = {}
    for key in module.state_dict():
        full = f"{name}.{key}"
        if full not in state:  # state_dict() lists a module shared by two names only once
            raise ValueError(f"save_model: layer {name!r} shares its parameters with an earlier "
                             "layer; each layer of a model file needs its own")
        params[key.rsplit(".", 1)[-1]] = full
    return {"type": kind, "name": name, **arguments(module), "params": params}


def _as_sequential(model) -> M.Sequential:
    if isinstance(model, M.Sequential):
        return model
    to_sequential = getattr(model, "to_sequential", None)
    if callable(to_sequential):
        return to_sequential()
    raise TypeError(f"save_model: expected a Sequential, or a model with to_sequential() "
                    f"(such as nnx.models.LeNet5), got {type(model).__name__}")


def _check_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"save_model: metadata must be a dict, got {type(metadata).__name__}")
    out = {}
    for key, value in metadata.items():
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool)):
            raise TypeError(f"save_model: metadata maps strings to strings, numbers or booleans;"
                            f" got {key!r}: {type(value).__name__}")
        out[key] = value
    return out


def save_model(model, path, metadata: dict | None = None) -> None:
    """Writes ``model`` (a ``Sequential``, or a model with ``to_sequential()`` such as
    ``nnx.models.LeNet5``) to ``path``: its layers, its state dict and ``metadata`` (a flat dict
    of strings, numbers and booleans, e.g. ``{"input_mean": 0.1307, "input_std": 0.3081}``), in
    one checkpoint written atomically by ``nnx.save``. ``load_model`` and the C++ runtime
    (``nnx::Model::load``) read it. Raises ``TypeError`` naming a layer the format cannot hold."""
    seq = _as_sequential(model)
    state = seq.state_dict()
    layers = [_describe(name, module, state) for name, module in seq._modules.items()
              if module is not None]
    nnx.io.save({"format": FORMAT, "version": VERSION, "layers": layers, "state_dict": state,
                 "metadata": _check_metadata(metadata)}, path)


def _build(spec: dict):
    kind = spec["type"]
    args = {k: v for k, v in spec.items() if k not in ("type", "name", "params")}
    for key in ("kernel_size", "stride", "padding", "dilation", "output_size"):
        if key in args:
            args[key] = tuple(args[key])
    if kind not in {k for k, _ in _DESCRIBE.values()}:
        raise ValueError(f"load_model: unknown layer type {kind!r}")
    # The arguments of each entry are those of its module's constructor.
    if kind == "LSTM":
        return LSTMOutput(M.LSTM(**args))
    return getattr(M, kind)(**args)


def load_model(path) -> M.Sequential:
    """Rebuilds the ``Sequential`` that ``save_model`` wrote to ``path``, with its weights, in
    eval mode. Its ``metadata`` is ``nnx.load(path)["metadata"]``. Raises ``ValueError`` if the
    file is a checkpoint without a model (e.g. a state dict written by ``nnx.save``)."""
    root = nnx.io.load(path)
    if not isinstance(root, dict) or root.get("format") != FORMAT:
        raise ValueError(f"load_model: {path!r} is an nnx checkpoint but not a model file (no "
                         "architecture); it was written by nnx.save, not nnx.save_model")
    if root.get("version") != VERSION:
        raise ValueError(f"load_model: {path!r} has model file version {root.get('version')!r}"
                         f"; this nnx reads {VERSION}")
    model = M.Sequential(OrderedDict((spec["name"], _build(spec)) for spec in root["layers"]))
    model.load_state_dict(root["state_dict"])
    return model.eval()
