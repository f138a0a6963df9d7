"""Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from nnx import _kernels, _memory
from nnx.optim.optimizer import Optimizer, _check_nonnegative

__all__ = ["SGD"]


class SGD(Optimizer):
    """PyTorch's SGD: ``g = grad + weight_decay * param``; with momentum ``buf = g`` on the first
    step, then ``buf = momentum * buf + (1 - dampening) * g``, and ``g = g + momentum * buf``
    (Nesterov) or ``g = buf``; ``param -= lr * g``. ``lr`` defaults to 1e-3, as in torch >= 2.2.
    Per-parameter state: ``momentum_buffer`` (only with momentum)."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        for key in ("lr", "momentum", "dampening", "weight_decay"):
            _check_nonnegative("SGD", group, key)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening = 0, "
                             f"got momentum={group['momentum']}, dampening={group['dampening']}")

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                param, grad = self._param_arrays(p)
                buf, first = None, False
                if momentum:
                    state = self.state.setdefault(p)
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = _memory.empty_like(param)
                        state["momentum_buffer"] = buf
                        first = True
                _kernels.sgd_step(param, grad, buf, lr=group["lr"], momentum=momentum,
                                  dampening=group["dampening"],
                                  weight_decay=group["weight_decay"],
                                  nesterov=group["nesterov"], first_step=first)
                p._version_cell[0] += 1  # changed in place: graphs that saved it must not reuse it
