"""nnx: a small deep-learning library with a fast C++ core.

The numerical kernels live in the extension module ``nnx._core``; this package is the thin
Python layer on top of it.
"""

import numpy as _np

from nnx import (
    _core,
    autograd,
    classic,
    data,
    io,
    model_file,
    models,
    nn,
    optim,
    random,
    testing,
    train,
)
from nnx._factory import (
    arange,
    empty,
    eye,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    zeros,
    zeros_like,
)
from nnx._native import get_cmake_dir, get_include
from nnx._ops import matmul_any as matmul
from nnx._ops import where
from nnx._runtime import get_num_threads, info, num_threads, set_num_threads
from nnx._shape_ops import cat, stack
from nnx.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from nnx.io import load, save
from nnx.linalg import gemm
from nnx.model_file import load_model, save_model
from nnx.random import get_rng_state, initial_seed, manual_seed, set_rng_state
from nnx.tensor import Tensor, from_numpy, tensor

__version__ = _core.__version__

float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
int32 = _np.dtype(_np.int32)
int64 = _np.dtype(_np.int64)

# Resolve the ISA now, so that a bad NNX_ISA is reported at import, not inside the first kernel.
_core.active_isa()

__all__ = [
    "Tensor",
    "__version__",
    "arange",
    "autograd",
    "classic",
    "data",
    "io",
    "load",
    "optim",
    "save",
    "train",
    "cat",
    "empty",
    "enable_grad",
    "eye",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "gemm",
    "get_cmake_dir",
    "get_include",
    "get_num_threads",
    "get_rng_state",
    "info",
    "initial_seed",
    "int32",
    "int64",
    "is_grad_enabled",
    "load_model",
    "manual_seed",
    "matmul",
    "model_file",
    "models",
    "nn",
    "no_grad",
    "num_threads",
    "ones",
    "ones_like",
    "rand",
    "randint",
    "randn",
    "random",
    "randperm",
    "save_model",
    "set_grad_enabled",
    "set_num_threads",
    "set_rng_state",
    "stack",
    "tensor",
    "testing",
    "where",
    "zeros",
    "zeros_like",
]
