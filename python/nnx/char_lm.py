"""A character-level LSTM language model: ``CharLSTM``, its training loop (truncated
backpropagation through time with gradient clipping), validation in bits per character and
sampling with a temperature.

Used by ``examples/char_lstm_shakespeare.py`` and ``python -m nnx train char-lstm``. ``DEFAULTS``
is the reference configuration for tinyshakespeare: embedding 64, one LSTM layer of 256 units,
sequences of 64 characters, batches of 32, Adam with learning rate 2e-3, gradients clipped to a
total norm of 5.

Training reads the text as ``batch_size`` contiguous streams (``nnx.data.text.streams``) and
carries the LSTM state from one window of ``seq_len`` characters to the next (detached, so
gradients stop at the window's start); validation does the same over the held-out text, so
every validation character is predicted with all the context before it.
"""

from __future__ import annotations

import math
import time

import numpy as np

from nnx import optim
from nnx.autograd import no_grad
from nnx.data.text import streams
from nnx.nn import functional as F
from nnx.nn.modules import LSTM, Embedding, Linear, Module
from nnx.nn.utils import clip_grad_norm_
from nnx.random import default_generator
from nnx.tensor import Tensor

__all__ = ["DEFAULTS", "CharLSTM", "bits_per_char", "sample", "train_char_lstm"]

DEFAULTS = dict(embedding_dim=64, hidden_size=256, num_layers=1, dropout=0.0, seq_len=64,
                batch_size=32, lr=2e-3, clip=5.0, steps=3000, eval_every=250)
LN2 = math.log(2.0)


class CharLSTM(Module):
    """Embedding -> LSTM -> Linear: ``model(ids, state)`` maps int64 character ids (T, B) to
    next-character logits (T, B, vocab_size) and the final LSTM state."""

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_size: int = 256,
                 num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.embedding = Embedding(vocab_size, embedding_dim)
        self.lstm = LSTM(embedding_dim, hidden_size, num_layers,
                         dropout=dropout if num_layers > 1 else 0.0)
        self.fc = Linear(hidden_size, vocab_size)

    def forward(self, ids, state=None):
        output, state = self.lstm(self.embedding(ids), state)
        return self.fc(output), state


def _windows(data: np.ndarray, seq_len: int):
    """(inputs, targets) column windows of the (B, n) streams: targets are the inputs shifted
    by one character; the last window may be shorter."""
    n = data.shape[1]
    for start in range(0, n - 1, seq_len):
        stop = min(start + seq_len, n - 1)
        yield data[:, start:stop].T, data[:, start + 1:stop + 1].T


def bits_per_char(model: CharLSTM, ids: np.ndarray, batch_size: int = 32,
                  seq_len: int = 64) -> float:
    """The mean cross-entropy in bits of predicting each character of ``ids`` from the ones
    before it in its stream (the state is carried across windows), in eval mode."""
    batch = max(1, min(batch_size, len(ids) // (seq_len + 1)))
    data = streams(ids, batch)
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    with no_grad():
        for x, y in _windows(data, seq_len):
            logits, state = model(Tensor(np.ascontiguousarray(x)), state)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                     Tensor(y.reshape(-1)), reduction="sum").item()
            count += y.size
    model.train(was_training)
    return total / count / LN2


def sample(model: CharLSTM, vocab, prime: str = "\n", length: int = 500,
           temperature: float = 1.0) -> str:
    """``prime`` followed by ``length`` characters drawn one at a time from
    softmax(logits / temperature) (nnx's generator, so ``nnx.manual_seed`` repeats it): lower
    temperatures give safer, more repetitive text, higher ones more surprising text."""
    if not temperature > 0:
        raise ValueError(f"sample: temperature must be > 0, got {temperature}")
    if not prime:
        raise ValueError("sample: prime must hold at least one character")
    rng = default_generator()
    was_training = model.training
    model.eval()
    out = []
    with no_grad():
        logits, state = model(Tensor(vocab.encode(prime).reshape(-1, 1)))
        for _ in range(length):
            z = logits.data[-1, 0].astype(np.float64) / temperature
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(vocab.itos[nxt])
            logits, state = model(Tensor(np.array([[nxt]], dtype=np.int64)), state)
    model.train(was_training)
    return prime + "".join(out)


def train_char_lstm(model: CharLSTM, train_ids: np.ndarray, val_ids: np.ndarray | None = None,
                    steps: int = DEFAULTS["steps"], batch_size: int = DEFAULTS["batch_size"],
                    seq_len: int = DEFAULTS["seq_len"], lr: float = DEFAULTS["lr"],
                    clip: float | None = DEFAULTS["clip"],
                    eval_every: int = DEFAULTS["eval_every"], optimizer=None, log=print) -> dict:
    """Trains ``model`` for ``steps`` Adam steps (or with ``optimizer``) on windows of the
    training streams and returns the history ``{"step", "train_bpc", "val_bpc"}`` (lists; the
    training value is the mean over the steps since the last evaluation). ``val_ids`` are
    evaluated every ``eval_every`` steps and after the last one. Each pass over the training
    streams starts at a random offset (nnx's generator) with a fresh state. ``log`` receives
    one line per evaluation (None: silent)."""
    opt = optimizer if optimizer is not None else optim.Adam(model.parameters(), lr=lr)
    params = [p for p in model.parameters() if p.requires_grad]
    history: dict = {"step": [], "train_bpc": [], "val_bpc": []}
    rng = default_generator()
    windows, state, running, t0 = iter(()), None, [], time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        batch = next(windows, None)
        if batch is None:  # a new pass over the training text
            offset = int(rng.integers(0, seq_len)) if len(train_ids) > 4 * seq_len else 0
            windows = _windows(streams(train_ids[offset:], batch_size), seq_len)
            batch, state = next(windows), None
        x, y = batch
        logits, state = model(Tensor(np.ascontiguousarray(x)), state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Tensor(y.reshape(-1)))
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            clip_grad_norm_(params, clip)
        opt.step()
        running.append(loss.item() / LN2)
        if step % eval_every == 0 or step == steps:
            val = bits_per_char(model, val_ids, batch_size, seq_len) if val_ids is not None \
                else float("nan")
            history["step"].append(step)
            history["train_bpc"].append(float(np.mean(running)))
            history["val_bpc"].append(val)
            if log is not None:
                log(f"step {step:5d}  train {np.mean(running):.3f} bits/char  "
                    f"val {val:.3f} bits/char  ({time.perf_counter() - t0:.0f} s)")
            running = []
    return history
