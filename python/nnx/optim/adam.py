"""Adam (L2 weight decay) and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math

import numpy as np

from nnx import _kernels, _memory
from nnx.optim.optimizer import Optimizer, _check_nonnegative

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``:
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``param -= lr * m_hat / (sqrt(v_hat) + eps)``; ``weight_decay`` adds ``wd * param`` to the
    gradient (L2). ``amsgrad`` is not supported. Per-parameter state: ``step`` (int),
    ``exp_avg``, ``exp_avg_sq``."""

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay"):
            _check_nonnegative(name, group, key)
        betas = group["betas"]
        if isinstance(betas, list):
            betas = group["betas"] = tuple(betas)
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            if not isinstance(b, (int, float, np.floating)) or not (0.0 <= b < 1.0) \
                    or not math.isfinite(b):
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {b!r}; "
                                 "expected 0 <= beta < 1")

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            updated, params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                param, grad = self._param_arrays(p)
                state = self.state.setdefault(p)
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = _memory.zeros_like(param)
                    state["exp_avg_sq"] = _memory.zeros_like(param)
                state["step"] = int(state["step"]) + 1
                updated.append(p), params.append(param), grads.append(grad)
                exp_avgs.append(state["exp_avg"]), exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            # The group's parameters in one kernel call.
            _kernels.adam_steps(params, grads, exp_avgs, exp_avg_sqs, steps, lr=group["lr"],
                                beta1=beta1, beta2=beta2, eps=group["eps"],
                                weight_decay=group["weight_decay"], decoupled=self._decoupled)
            for p in updated:
                p._version_cell[0] += 1  # changed in place: graphs that saved it must not reuse it


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``: each step
    first shrinks ``param *= 1 - lr * weight_decay``, then applies the Adam update to the plain
    gradient."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
