"""A training loop: ``fit`` and ``evaluate``, with progress, metrics, callbacks and checkpoints.

``fit`` runs whole epochs over a loader of ``(input, target)`` batches: forward, loss, backward,
``optimizer.step()``; then validation (under ``no_grad``, model in eval mode), the scheduler's
epoch step, the callbacks, and a checkpoint. The checkpoint ``checkpoint_dir/last.npz`` holds
the model, optimizer, scheduler, history, callback state and random generator state, written
atomically with ``nnx.io.save``; ``fit(..., resume=True)`` continues from it and gives exactly
the losses an uninterrupted run would have given (the shuffling and dropout draws continue from
the saved generator state).

A non-finite training loss stops training at once: the partial epoch is discarded, the model,
optimizer and generator are put back as they were at the end of the last good epoch, and the
last checkpoint (from that epoch) is left untouched. The ``TerminateOnNaN`` callback extends
this to what the batch check cannot see: a non-finite validation loss or metric, and weights
made non-finite by the epoch's last updates; the epoch it rejects is rolled back the same way.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

import nnx.io
from nnx import _checkpoint
from nnx.autograd import no_grad
from nnx.tensor import Tensor

__all__ = ["Callback", "EarlyStopping", "History", "TerminateOnNaN", "accuracy", "evaluate",
           "fit", "plot_history"]

# ---------------------------------------------------------------------------------------------
# Metrics: f(output, target) -> mean over the batch; fit and evaluate weight them by batch size.

def accuracy(output: np.ndarray, target: np.ndarray) -> float:
    """Fraction of correct predictions. (N, C) scores: the argmax against int class indices (N,)
    or against the argmax of a (N, C) target table. (N,) or (N, 1) logits: ``output > 0``
    against ``target > 0.5`` (binary classification with ``BCEWithLogitsLoss``)."""
    output = np.asarray(output)
    target = np.asarray(target)
    if output.ndim == 2 and output.shape[1] > 1:
        predicted = output.argmax(axis=1)
        if target.ndim == 2:
            target = target.argmax(axis=1)
    else:
        predicted = output.reshape(len(output)) > 0
        target = target.reshape(len(target)) > 0.5
    if predicted.shape != target.shape:
        raise ValueError(f"accuracy: {len(predicted)} predictions (output shape {output.shape}) "
                         f"for targets of shape {target.shape}")
    return float(np.mean(predicted == target)) if len(target) else 0.0


_METRICS = {"accuracy": accuracy}


def _resolve_metrics(metrics) -> dict:
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    out = {}
    for m in metrics:
        if isinstance(m, str):
            if m not in _METRICS:
                raise ValueError(f"unknown metric {m!r}; expected one of {sorted(_METRICS)} or a "
                                 "callable f(output, target) -> float")
            out[m] = _METRICS[m]
        elif callable(m):
            out[getattr(m, "__name__", type(m).__name__)] = m
        else:
            raise TypeError(f"a metric must be a name or a callable, got {type(m).__name__}")
    return out


# ---------------------------------------------------------------------------------------------
# History and callbacks

class History:
    """Per-epoch records of ``fit``: ``history.epochs`` is a list of dicts with ``epoch``,
    ``loss``, each metric, ``val_loss`` and ``val_<metric>`` (when validating), ``lr``, ``time``
    (seconds, validation included) and ``samples_per_s`` (training throughput).
    ``history["loss"]`` is the list of one key over epochs; ``stop_reason`` says why training
    ended early (None when it ran all epochs)."""

    def __init__(self):
        self.epochs: list[dict] = []
        self.stop_reason: str | None = None

    def append(self, record: dict) -> None:
        self.epochs.append(dict(record))

    def __getitem__(self, key: str) -> list:
        if not any(key in e for e in self.epochs):
            raise KeyError(f"History has no {key!r}; keys: {self.keys()}")
        return [e.get(key) for e in self.epochs]

    def keys(self) -> list[str]:
        keys: list[str] = []
        for e in self.epochs:
            keys.extend(k for k in e if k not in keys)
        return keys

    @property
    def history(self) -> dict[str, list]:
        """``{key: [value per epoch]}``, as Keras' ``History.history``."""
        return {k: self[k] for k in self.keys()}

    def __len__(self) -> int:
        return len(self.epochs)

    def state_dict(self) -> dict:
        return {"epochs": [dict(e) for e in self.epochs], "stop_reason": self.stop_reason}

    def load_state_dict(self, state: dict) -> None:
        self.epochs = [dict(e) for e in state["epochs"]]
        self.stop_reason = state.get("stop_reason")

    def __repr__(self) -> str:
        last = _format_record(self.epochs[-1]) if self.epochs else "no epochs"
        return f"History({len(self)} epochs; last: {last})"


class Callback:
    """Hooks into ``fit``. ``on_epoch_end`` returns True to stop training. Callbacks with state
    implement ``state_dict``/``load_state_dict`` so that a resumed run continues it.

    A callback whose ``rollback`` attribute is true rejects the epoch it stops at: ``fit`` then
    restores the end of the previous epoch and keeps its checkpoint, and ``history.stop_reason``
    takes the callback's ``reason`` attribute (see :class:`TerminateOnNaN`)."""

    rollback = False
    model = None

    def set_model(self, model) -> None:
        """Called by ``fit`` before training with the model being trained."""
        self.model = model

    def on_train_begin(self, keys: list[str]) -> None:
        """Called once with the keys every epoch record will have."""

    def on_epoch_end(self, epoch: int, logs: dict) -> bool:
        return False

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row. ``mode`` is ``'min'``, ``'max'`` or ``'auto'`` (max for names containing
    "acc", min otherwise)."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto"):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_begin(self, keys: list[str]) -> None:
        if self.monitor not in keys:
            raise ValueError(f"EarlyStopping: monitored quantity {self.monitor!r} is not "
                             f"recorded (pass a val_loader for val_* keys); available: {keys}")

    def on_epoch_end(self, epoch: int, logs: dict) -> bool:
        value = logs[self.monitor]
        if self.best is None:
            improved = True
        elif self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state["best"], state["wait"]
        self.stopped_epoch = state.get("stopped_epoch")


class TerminateOnNaN(Callback):
    """Stops training at the end of an epoch with a NaN or infinite value, and rejects that
    epoch: ``fit`` puts the model, optimizer, scheduler and random generators back as they were
    at the end of the last good epoch, keeps that epoch's checkpoint (it is not overwritten) and
    drops the epoch from the history; ``history.stop_reason`` names the value found.

    Checked: ``monitor`` (a key or a list of keys of the epoch record; None: every number in
    it, training and validation losses and metrics) and, with ``check_parameters``, every
    parameter and buffer of the model. ``fit`` itself already stops at a non-finite batch loss,
    before its backward; this callback catches what comes later, e.g. weights that the epoch's
    last updates made non-finite, which would otherwise be saved in the checkpoint.
    """

    rollback = True

    def __init__(self, monitor=None, check_parameters: bool = True):
        self.monitor = [monitor] if isinstance(monitor, str) else monitor
        self.check_parameters = bool(check_parameters)
        self.reason: str | None = None

    def on_train_begin(self, keys: list[str]) -> None:
        missing = [k for k in self.monitor or () if k not in keys]
        if missing:
            raise ValueError(f"TerminateOnNaN: {missing} not recorded (pass a val_loader for "
                             f"val_* keys); available: {keys}")

    def on_epoch_end(self, epoch: int, logs: dict) -> bool:
        self.reason = self._find(epoch, logs)
        return self.reason is not None

    def _find(self, epoch: int, logs: dict) -> str | None:
        for key in self.monitor or logs:
            value = logs.get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                return f"non-finite {key} {value} at epoch {epoch}"
        if self.check_parameters and self.model is not None:
            named = list(self.model.named_parameters()) + list(self.model.named_buffers())
            for name, t in named:
                data = np.asarray(getattr(t, "data", t))
                if data.dtype.kind == "f" and not np.isfinite(data).all():
                    return f"non-finite values in {name} after epoch {epoch}"
        return None


# ---------------------------------------------------------------------------------------------
# Progress display

def _format_record(r: dict) -> str:
    parts = [f"{k} {v:.4f}" for k, v in r.items()
             if k not in ("epoch", "lr", "time", "samples_per_s") and isinstance(v, float)]
    if "lr" in r:
        parts.append(f"lr {r['lr']:.3g}")
    parts.append(f"{r.get('time', 0.0):.1f}s")
    parts.append(f"{r.get('samples_per_s', 0.0):.0f} samples/s")
    return "  ".join(parts)


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _Progress:
    """A tqdm bar per epoch on a terminal with tqdm installed; else one summary line per epoch
    on stderr; nothing with ``progress=False``."""

    def __init__(self, progress, epochs: int):
        self.epochs = epochs
        self.stream = sys.stderr
        tqdm = _tqdm()
        if progress is False:
            self.mode = "off"
        elif tqdm is not None and (progress is True or _isatty(self.stream)):
            self.mode, self.tqdm = "bar", tqdm
        else:
            self.mode = "line"
        self.bar = None

    def start_epoch(self, epoch: int, total: int | None) -> None:
        if self.mode == "bar":
            self.bar = self.tqdm(total=total, desc=f"epoch {epoch}/{self.epochs}", unit="batch",
                                 file=self.stream, leave=True, dynamic_ncols=True)

    def update(self, loss: float, metrics: dict, samples_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            post = {"loss": f"{loss:.4f}"}
            post.update({k: f"{v:.4f}" for k, v in metrics.items()})
            post["samples/s"] = f"{samples_per_s:.0f}"
            self.bar.set_postfix(post, refresh=False)

    def end_epoch(self, record: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(_format_record(record), refresh=True)
            self.bar.close()
            self.bar = None
        elif self.mode == "line":
            print(f"epoch {record['epoch']}/{self.epochs}  {_format_record(record)}",
                  file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.mode != "off":
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Loop

def _batch(batch, where: str):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"{where}: each batch must be an (input, target) pair, got "
                        f"{type(batch).__name__}")
    x, y = batch
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    y = y if isinstance(y, Tensor) else Tensor(np.asarray(y))
    return x, y


class _Meter:
    """Sample-weighted running means of the loss and the metrics."""

    def __init__(self, metrics: dict):
        self.metrics = metrics
        self.n = 0
        self.sums = {"loss": 0.0, **{k: 0.0 for k in metrics}}

    def add(self, loss: float | None, output: np.ndarray, target: np.ndarray, n: int) -> None:
        self.n += n
        if loss is not None:
            self.sums["loss"] += loss * n
        for name, f in self.metrics.items():
            self.sums[name] += float(f(output, target)) * n

    def means(self, prefix: str = "", with_loss: bool = True) -> dict:
        n = max(self.n, 1)
        return {prefix + k: v / n for k, v in self.sums.items() if with_loss or k != "loss"}


def evaluate(model, loader, loss_fn=None, metrics=("accuracy",)) -> dict:
    """Mean loss (when ``loss_fn`` is given) and metrics of ``model`` over ``loader``, under
    ``no_grad`` with the model in eval mode (its previous mode is restored)."""
    resolved = _resolve_metrics(metrics)
    was_training = model.training
    model.eval()
    meter = _Meter(resolved)
    try:
        with no_grad():
            for batch in loader:
                x, y = _batch(batch, "evaluate")
                out = model(x)
                loss = float(loss_fn(out, y).data) if loss_fn is not None else None
                meter.add(loss, out.data, y.data, len(x.data))
    finally:
        model.train(was_training)
    return meter.means(with_loss=loss_fn is not None)


def fit(model, loss_fn, optimizer, train_loader, epochs: int, val_loader=None,
        metrics=("accuracy",), scheduler=None, callbacks=(), checkpoint_dir=None,
        resume: bool = False, progress=None) -> History:
    """Trains ``model`` for ``epochs`` epochs (in total: a resumed run counts the epochs of the
    checkpoint) and returns the :class:`History`.

    ``metrics``: names (``"accuracy"``) or callables ``f(output, target) -> batch mean`` on numpy
    arrays; training metrics are averaged over the epoch's batches as they are computed.
    ``scheduler.step()`` runs once per epoch. ``checkpoint_dir``: write ``last.npz`` there after
    every epoch; ``resume=True`` continues from it (and starts from scratch, with a note, when
    it does not exist yet). ``progress``: None (a bar on a terminal when tqdm is installed, else
    one line per epoch on stderr), True (a bar if tqdm is installed), False (silent).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs a checkpoint_dir")
    resolved = _resolve_metrics(metrics)
    callbacks = list(callbacks)
    keys = ["loss", *resolved]
    if val_loader is not None:
        keys += ["val_loss", *("val_" + k for k in resolved)]
    for cb in callbacks:
        if hasattr(cb, "set_model"):
            cb.set_model(model)
        cb.on_train_begin(keys)
    history = History()
    display = _Progress(progress, epochs)
    path = _checkpoint.path_in(checkpoint_dir)
    start = 0
    if resume:
        start = _checkpoint.resume(path, model, optimizer, scheduler, history, callbacks,
                                   train_loader, display.message)
        if history.stop_reason is not None:
            return history
    if path is not None:
        os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
    last_good = _checkpoint.snapshot(model, optimizer, scheduler, history, callbacks,
                                     train_loader, start)
    try:
        for epoch in range(start + 1, epochs + 1):
            record = _train_epoch(model, loss_fn, optimizer, train_loader, resolved, display,
                                  epoch)
            if "_nan" in record:
                rejected = record["_nan"]
            else:
                if val_loader is not None:
                    scores = evaluate(model, val_loader, loss_fn, resolved)
                    record.update({"val_" + k: v for k, v in scores.items()})
                record["lr"] = float(optimizer.param_groups[0]["lr"])
                if scheduler is not None:
                    scheduler.step()
                record["time"] = time.perf_counter() - record.pop("_t0")
                stop, rejected = _epoch_end(callbacks, epoch, record)
            if rejected is not None:
                # The epoch is discarded: back to the end of the last good one, whose
                # checkpoint stays as it is.
                history.stop_reason = rejected
                _checkpoint.restore(last_good, model, optimizer, scheduler, History(),
                                    callbacks, train_loader, "the last good epoch")
                display.close()
                display.message(f"stopping: {rejected}; model and optimizer restored to the "
                                f"end of epoch {epoch - 1}"
                                + (f", checkpoint {path} kept" if path else ""))
                break
            history.append(record)
            if stop:
                history.stop_reason = f"early stopping after epoch {epoch}"
            display.end_epoch(record)
            last_good = _checkpoint.snapshot(model, optimizer, scheduler, history, callbacks,
                                             train_loader, epoch)
            if path is not None:
                nnx.io.save(last_good, path)
            if stop:
                display.message(history.stop_reason)
                break
    finally:
        display.close()
    return history


def _epoch_end(callbacks, epoch: int, record: dict) -> tuple[bool, str | None]:
    """Runs every callback's ``on_epoch_end``; returns (stop, reason) with ``reason`` set when
    a rollback callback (``TerminateOnNaN``) rejected the epoch."""
    stop, rejected = False, None
    for cb in callbacks:
        if cb.on_epoch_end(epoch, record):
            stop = True
            if getattr(cb, "rollback", False) and rejected is None:
                rejected = getattr(cb, "reason", None) or f"{type(cb).__name__} stopped training"
    return stop, rejected


def _train_epoch(model, loss_fn, optimizer, loader, metrics, display, epoch) -> dict:
    model.train()
    meter = _Meter(metrics)
    t0 = time.perf_counter()
    try:
        total = len(loader)
    except TypeError:
        total = None
    display.start_epoch(epoch, total)
    for i, batch in enumerate(loader):
        x, y = _batch(batch, "fit")
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        value = float(loss.data)
        if not math.isfinite(value):
            return {"_nan": f"non-finite loss {value} at epoch {epoch}, batch {i + 1}"}
        loss.backward()
        optimizer.step()
        meter.add(value, out.data, y.data, len(x.data))
        means = meter.means()
        display.update(means["loss"], {k: v for k, v in means.items() if k != "loss"},
                       meter.n / max(time.perf_counter() - t0, 1e-9))
    train_time = time.perf_counter() - t0
    record = {"epoch": epoch, **meter.means()}
    record["samples_per_s"] = meter.n / max(train_time, 1e-9)
    record["_t0"] = t0
    return record


def plot_history(history: History, path) -> str | None:
    """Saves loss and metric curves (train and validation) to a PNG at ``path`` and returns the
    path; without matplotlib, prints a note on stderr and returns None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_history: matplotlib is not installed; no plot written "
              "(pip install matplotlib)", file=sys.stderr)
        return None
    keys = [k for k in history.keys() if k not in ("epoch", "lr", "time", "samples_per_s")
            and not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    epochs = history["epoch"]
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, history[key], marker="o", label="train")
        if "val_" + key in history.keys():
            ax.plot(epochs, history["val_" + key], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)
    return os.fspath(path)
