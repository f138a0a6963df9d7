"""The checkpoints of ``nnx.train.fit``: snapshot, restore and resume.

A snapshot is a plain dict (what ``nnx.io.save`` writes as ``checkpoint_dir/last.npz``) holding
everything the next epoch depends on: model, optimizer, scheduler, history, callback state, the
global generator's state and the state of a loader's private generator. Restoring it puts a run
back exactly where the snapshot was taken, so a resumed run gives the losses an uninterrupted
one would have given.
"""

from __future__ import annotations

import os

import numpy as np

import nnx.io
from nnx import random as _random

FILE = "last.npz"
FORMAT = "nnx-fit"


def path_in(checkpoint_dir) -> str | None:
    """Where ``fit`` keeps its checkpoint in ``checkpoint_dir`` (None: no checkpoints)."""
    return os.path.join(os.fspath(checkpoint_dir), FILE) if checkpoint_dir else None


def _loader_generator(loader):
    # A loader with a private generator (an int seed) must have it restored on resume too.
    gen = getattr(loader, "generator", None)
    if isinstance(gen, np.random.Generator) and gen is not _random.default_generator():
        return gen
    return None


def snapshot(model, optimizer, scheduler, history, callbacks, loader, epoch) -> dict:
    gen = _loader_generator(loader)
    return {
        "format": FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history.state_dict(),
        "callbacks": [cb.state_dict() for cb in callbacks],
        "rng": _random.get_rng_state(),
        "loader_rng": gen.bit_generator.state if gen is not None else None,
    }


def restore(state, model, optimizer, scheduler, history, callbacks, loader, path) -> int:
    """Loads a :func:`snapshot` into the objects of a run; returns its epoch. ``path`` names
    where the state came from, for error messages."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"fit: {path} is not a training checkpoint written by nnx.train.fit")
    if (state["scheduler"] is None) != (scheduler is None):
        have = "has" if state["scheduler"] is not None else "has no"
        raise ValueError(f"fit: the checkpoint {path} {have} scheduler state, but this call "
                         f"passes {'none' if scheduler is None else 'one'}")
    if len(state["callbacks"]) != len(callbacks):
        raise ValueError(f"fit: the checkpoint {path} has state for {len(state['callbacks'])} "
                         f"callbacks, this call passes {len(callbacks)}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    history.load_state_dict(state["history"])
    for cb, cb_state in zip(callbacks, state["callbacks"]):
        cb.load_state_dict(cb_state)
    _random.set_rng_state(state["rng"])
    gen = _loader_generator(loader)
    if gen is not None and state.get("loader_rng") is not None:
        gen.bit_generator.state = state["loader_rng"]
    return int(state["epoch"])


def resume(path, model, optimizer, scheduler, history, callbacks, loader, message) -> int:
    """Restores the checkpoint at ``path`` if there is one and returns its epoch (0 without
    one); ``message(text)`` tells the user which. A run that had stopped comes back with
    ``history.stop_reason`` set: the caller has nothing left to do."""
    if not os.path.exists(path):
        message(f"no checkpoint at {path}; starting from scratch")
        return 0
    start = restore(nnx.io.load(path), model, optimizer, scheduler, history, callbacks, loader,
                    path)
    message(f"resuming from {path} after epoch {start}")
    if history.stop_reason is not None:
        message(f"that run had stopped ({history.stop_reason}); nothing to do")
    return start
