"""``Parameter``: a Tensor that a Module registers as one of its learnable weights."""

from __future__ import annotations

import numpy as np

from nnx.tensor import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` (by default) that ``Module.__setattr__``
    registers in ``parameters()`` and ``state_dict()``.

    ``Parameter(data)`` takes a numpy array or a Tensor, whose array it shares without copying
    (as ``torch.nn.Parameter`` does); ``Parameter()`` is an empty float32 parameter.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        elif isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
