"""``Embedding``: a lookup table of learnable vectors indexed by integers (token ids)."""

from __future__ import annotations

import numpy as np

from nnx import _memory
from nnx.nn import init
from nnx.nn.functional_rnn import (
    _padding_index,
    _unsupported_embedding_options,
    embedding,
)
from nnx.nn.modules.module import Module
from nnx.nn.parameter import Parameter
from nnx.tensor import Tensor

__all__ = ["Embedding"]


class Embedding(Module):
    """``Embedding(num_embeddings, embedding_dim, padding_idx=None)``: ``emb(indices)`` maps
    integer indices of any shape S, each in [0, num_embeddings), to the rows of ``weight``
    (num_embeddings, embedding_dim): output (*S, embedding_dim).

    As PyTorch's: the weight is initialised from N(0, 1); row ``padding_idx`` (negative counts
    from the end) is initialised to zeros and never receives a gradient, so it stays a fixed
    padding vector; repeated indices add up their gradients (deterministically, in position
    order). An index out of range raises ``IndexError`` naming it. ``max_norm``,
    ``scale_grad_by_freq`` and ``sparse`` accept only their defaults; ``dtype`` (an nnx
    addition) defaults to float32.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None,
                 max_norm=None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, dtype=np.float32):
        super().__init__()
        who = "Embedding"
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
        _unsupported_embedding_options(who, max_norm, scale_grad_by_freq, sparse)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = _padding_index(padding_idx, self.num_embeddings, who)
        self.max_norm = None
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq = False
        self.sparse = False
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            self.weight = Parameter(_memory.empty(shape, dtype), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            data = _weight.data if isinstance(_weight, Tensor) else np.asarray(_weight)
            if data.shape != shape:
                raise ValueError(f"{who}: _weight must have shape {shape}, got {data.shape}")
            if data.dtype.kind != "f":
                raise TypeError(f"{who}: _weight must be float32 or float64, got {data.dtype}")
            weight = _memory.empty(shape, data.dtype)
            np.copyto(weight, data)
            self.weight = Parameter(weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        """N(0, 1) from nnx's generator, then zeros in row ``padding_idx``."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An ``Embedding`` holding a copy of the 2-D ``embeddings`` (array or Tensor), frozen
        (``requires_grad=False``) unless ``freeze=False``."""
        data = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if data.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D "
                             f"(num_embeddings, embedding_dim), got shape {data.shape}")
        return cls(data.shape[0], data.shape[1], padding_idx, max_norm, norm_type,
                   scale_grad_by_freq, sparse, _weight=data, _freeze=freeze)

    def forward(self, input):  # noqa: A002
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
