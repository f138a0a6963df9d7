"""Optimizers (``SGD``, ``Adam``, ``AdamW``) and learning-rate schedulers, PyTorch-shaped."""

from nnx.optim import lr_scheduler
from nnx.optim.adam import Adam, AdamW
from nnx.optim.optimizer import Optimizer
from nnx.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
