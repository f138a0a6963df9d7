"""nnx: a small deep-learning library with a fast C++ core.

The numerical kernels live in the extension module ``nnx._core``; this package is the thin
Python layer on top of it.
"""

from nnx import _core
from nnx._runtime import get_num_threads, info, num_threads, set_num_threads
from nnx.linalg import gemm, matmul

__version__ = _core.__version__

# Resolve the ISA now, so that a bad NNX_ISA is reported at import, not inside the first kernel.
_core.active_isa()

__all__ = [
    "__version__",
    "gemm",
    "get_num_threads",
    "info",
    "matmul",
    "num_threads",
    "set_num_threads",
]
