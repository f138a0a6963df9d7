"""Threads, instruction-set dispatch and build information."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nnx import _core


def set_num_threads(n: int) -> None:
    """Use ``n`` (1 to 1024) threads in nnx's parallel kernels (default: OpenMP's, i.e.
    ``OMP_NUM_THREADS``).

    Unlike ``omp_set_num_threads`` this applies to kernels called from every Python thread.
    Results do not depend on the thread count: they are bitwise identical for any ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads nnx's parallel kernels use."""
    return _core.get_num_threads()


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Temporarily use ``n`` threads: ``with nnx.num_threads(1): ...``."""
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


def info() -> dict:
    """Version, instruction set in use, CPU features, threads, OpenMP runtime and build type."""
    build = _core.build_info()
    features = _core.cpu_features()
    flags = [name for name, present in features.items() if present is True]
    return {
        "version": build["version"],
        "isa": _core.active_isa(),
        "supported_isas": _core.supported_isas(),
        "cpu": features["brand"] or features["vendor"],
        "cpu_features": flags,
        "num_threads": get_num_threads(),
        "openmp": build["openmp"],
        "build_type": build["build_type"],
        "native_build": build["native"],
        "compiler": build["compiler"],
    }
