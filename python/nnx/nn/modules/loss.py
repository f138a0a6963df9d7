"""Loss modules: thin wrappers over ``nnx.nn.functional``, reduction ``'mean'`` by default."""

from __future__ import annotations

from nnx.nn import functional as F
from nnx.nn.modules.module import Module

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "MultiClassHingeLoss"]

class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F._check_reduction(reduction, type(self).__name__)  # at construction, not first call
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Log-softmax + negative log-likelihood of (N, C) logits against int64 class indices (N,)
    or class probabilities (N, C), optionally with label smoothing. Class weights and
    ``ignore_index`` are not supported."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got "
                             f"{label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(input, target, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(p for p in parts if p)


class MSELoss(_Loss):
    """Mean squared error ``(input - target)^2``."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error ``|input - target|``."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (sigmoid fused in, numerically stable); targets in [0, 1].
    ``weight`` and ``pos_weight`` are not supported."""

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)


class MultiClassHingeLoss(_Loss):
    """Multiclass SVM (Weston-Watkins) loss: ``sum_{j != y} max(0, s_j - s_y + margin)`` per
    sample. Not PyTorch's ``MultiMarginLoss``, which divides by the number of classes."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input, target):
        return F.multiclass_hinge_loss(input, target, margin=self.margin,
                                       reduction=self.reduction)

    def extra_repr(self) -> str:
        parts = [f"margin={self.margin}", super().extra_repr()]
        return ", ".join(p for p in parts if p)
