"""The one random number generator behind all of nnx's randomness.

Weight initialisation, dropout masks, data shuffling and ``nnx.randn``/``nnx.rand`` all draw from
``default_generator()``, a ``numpy.random.Generator`` (PCG64). ``manual_seed`` reseeds that same
object in place, so code that holds a reference to it sees the new seed.

Unlike PyTorch, the generator starts from fresh OS entropy at import (numpy's default), so runs
are reproducible only after ``nnx.manual_seed``; ``initial_seed()`` tells which seed was used.
"""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["default_generator", "get_rng_state", "initial_seed", "manual_seed", "seed",
           "set_rng_state"]

_initial_seed: int = int(np.random.SeedSequence().entropy)
_generator = np.random.Generator(np.random.PCG64(_initial_seed))


def default_generator() -> np.random.Generator:
    """The shared generator; draw from it (never replace it) so that ``manual_seed`` applies."""
    return _generator


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the shared generator so that everything random in nnx repeats exactly."""
    global _initial_seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be non-negative, got {seed}")
    _initial_seed = int(seed)
    _generator.bit_generator.state = np.random.PCG64(_initial_seed).state
    return _generator


def seed() -> int:
    """Reseed from fresh OS entropy and return the new seed."""
    new = int(np.random.SeedSequence().entropy)
    manual_seed(new)
    return new


def initial_seed() -> int:
    """The seed of the last ``manual_seed``/``seed`` call (or the one drawn at import)."""
    return _initial_seed


def get_rng_state() -> dict:
    """The generator's state as a plain dict of str/int (``json.dumps`` can write it), for
    checkpoints. The 128-bit PCG64 counters are Python ints: keep them exact when storing."""
    return copy.deepcopy(_generator.bit_generator.state)


def set_rng_state(state: dict) -> None:
    """Restore a state returned by ``get_rng_state`` (e.g. read back from a checkpoint)."""
    if not isinstance(state, dict):
        raise TypeError(f"set_rng_state: state must be a dict, got {type(state).__name__}")
    name = state.get("bit_generator")
    expected = type(_generator.bit_generator).__name__
    if name != expected:
        raise ValueError(f"set_rng_state: state is for bit generator {name!r}, expected "
                         f"{expected!r}")
    try:
        _generator.bit_generator.state = copy.deepcopy(state)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"set_rng_state: malformed {expected} state: {e}") from None
