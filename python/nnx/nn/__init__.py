"""Neural-network building blocks: ``Module``, layers, losses and containers (from
``nnx.nn.modules``), ``Parameter``, and the stateless functions in ``nnx.nn.functional``."""

from nnx.nn import functional
from nnx.nn.modules import *  # noqa: F403 - Module, layers, losses, containers, Parameter
from nnx.nn.modules import __all__ as _modules_all

__all__ = ["functional", *_modules_all]

from nnx.nn import init, utils  # noqa: E402  (nnx.nn.utils after a plain import nnx)
