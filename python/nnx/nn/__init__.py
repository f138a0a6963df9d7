"""Neural-network building blocks: ``Module``, layers, losses and containers (from
``nnx.nn.modules``), ``Parameter``, the stateless functions in ``nnx.nn.functional``, weight
initialisation (``nnx.nn.init``) and gradient utilities (``nnx.nn.utils``)."""

from nnx.nn import functional, init, utils
from nnx.nn.modules import *  # noqa: F403 - Module, layers, losses, containers, Parameter
from nnx.nn.modules import __all__ as _modules_all

__all__ = ["functional", "init", "utils", *_modules_all]  # noqa: PLE0604 (strings, spread)
