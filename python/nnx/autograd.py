"""Reverse-mode automatic differentiation: grad mode, ``Function`` and the backward engine.

A differentiable op is a ``Function`` subclass with two static methods working on numpy arrays:

    class Square(Function):
        @staticmethod
        def forward(ctx, x):              # x: ndarray (Tensor arguments arrive unwrapped)
            ctx.save_for_backward(x)
            return x * x                   # ndarray, or a tuple of them
        @staticmethod
        def backward(ctx, grad):          # one gradient array per output
            (x,) = ctx.saved_tensors
            return 2 * x * grad            # one gradient (or None) per forward argument

    y = Square.apply(x)                    # a Tensor, recorded in the graph if x requires grad

Where nnx differs from PyTorch: ``forward`` and ``backward`` receive and return numpy arrays,
not Tensors (so they read like the textbook formulas and can call ``nnx._kernels`` directly), and
gradients are first order only (no ``create_graph``). Non-Tensor arguments (ints, dims, flags)
are passed through unchanged and get ``None`` as their gradient. Outputs of integer or bool dtype
are never differentiable.

The graph is made of ``Context`` objects (one per recorded call, also the ``grad_fn`` of its
outputs). A context holds the arrays saved for backward and edges to the contexts (or leaf
tensors) of its inputs, never the intermediate tensors themselves, so activations are freed as
soon as the user drops them; saved arrays are freed after backward unless ``retain_graph``.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

__all__ = ["Context", "Function", "backward", "enable_grad", "grad", "is_grad_enabled",
           "no_grad", "set_grad_enabled"]

# ---------------------------------------------------------------------------------------------
# Grad mode: per thread (as in PyTorch), so a data-loading thread cannot switch it off for the
# training thread.

_mode = threading.local()


def is_grad_enabled() -> bool:
    """Whether ops on tensors that require grad are recorded for backward in this thread."""
    return getattr(_mode, "enabled", True)


def _set_enabled(enabled: bool) -> None:
    _mode.enabled = enabled


class _GradModeGuard:
    """Context manager and decorator that sets grad mode and restores the previous one."""

    _enabled: bool

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self):
        self._previous.append(is_grad_enabled())
        _set_enabled(self._enabled)
        return self

    def __exit__(self, *exc) -> None:
        _set_enabled(self._previous.pop())

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradModeGuard):  # noqa: N801 - PyTorch's name
    """``with nnx.no_grad():`` or ``@nnx.no_grad()``: build no graph (evaluation, updates)."""

    _enabled = False


class enable_grad(_GradModeGuard):  # noqa: N801 - PyTorch's name
    """Record ops again inside a ``no_grad`` block."""

    _enabled = True


class set_grad_enabled(_GradModeGuard):  # noqa: N801 - PyTorch's name
    """``set_grad_enabled(mode)`` switches grad mode now; used with ``with`` it switches back."""

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self._enabled = bool(mode)
        self._previous.append(is_grad_enabled())
        _set_enabled(self._enabled)

    def __enter__(self):
        return self

    def __call__(self, func):
        raise TypeError("set_grad_enabled is not a decorator; use no_grad() or enable_grad()")


# ---------------------------------------------------------------------------------------------
# Graph nodes


class Context:
    """The ``ctx`` of one recorded ``Function`` call and the ``grad_fn`` of its outputs.

    Attributes a Function sets on ``ctx`` (``ctx.dim = 1``) live until backward has used them.
    """

    __slots__ = ("__dict__", "_edges", "_fn", "_out_meta", "_released", "_retained", "_saved",
                 "needs_input_grad")

    def __init__(self, fn: type, needs_input_grad: tuple) -> None:
        self._fn = fn
        self.needs_input_grad = needs_input_grad
        self._saved: tuple = ()
        self._edges: tuple = ()
        self._out_meta: tuple = ()
        self._retained: dict | None = None
        self._released = False

    def save_for_backward(self, *arrays) -> None:
        """Keep these arrays (or None) for backward; freed after backward unless retain_graph."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise RuntimeError(
                f"{Context.name(self)}: trying to backward through the graph a second time; its "
                "saved arrays were freed after the first backward (pass retain_graph=True to "
                "keep them)")
        return self._saved

    def name(self) -> str:
        """E.g. ``"MulBackward"`` (a method, as in PyTorch)."""
        return self._fn.__name__ + "Backward"

    def _release(self) -> None:
        self._saved = ()
        self.__dict__.clear()
        self._released = True

    def __repr__(self) -> str:
        return f"<{Context.name(self)}>"


class Function:
    """Base class of differentiable ops; see the module docstring for the contract."""

    @staticmethod
    def forward(ctx: Context, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        Tensor = _tensor_module.Tensor
        needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        record = any(needs) and is_grad_enabled()
        ctx = Context(cls, needs if record else (False,) * len(args))
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *arrays)
        single = not isinstance(out, tuple)
        outs = [_contiguous(o) for o in ((out,) if single else out)]
        if not record:
            results = [Tensor._wrap(o) for o in outs]
        else:
            ctx._edges = tuple(_edge(a) if n else None for a, n in zip(args, needs))
            ctx._out_meta = tuple((o.shape, o.dtype) for o in outs)
            results = [Tensor._wrap(o, ctx, i) if o.dtype.kind == "f" else Tensor._wrap(o)
                       for i, o in enumerate(outs)]
        return results[0] if single else tuple(results)


def _edge(t):
    # A non-leaf input is reached through the context that made it; a leaf is the tensor itself
    # (output number -1), into whose .grad backward accumulates.
    return (t.grad_fn, t._output_nr) if t.grad_fn is not None else (t, -1)


def _contiguous(x) -> np.ndarray:
    if hasattr(x, "_requires_grad"):  # a Tensor returned by a forward/backward
        x = x.data
    x = np.asarray(x)
    # np.ascontiguousarray would turn a 0-d result into shape (1,).
    return x if x.flags.c_contiguous else x.copy(order="C")


# ---------------------------------------------------------------------------------------------
# The engine


def backward(tensors, grad_tensors=None, retain_graph: bool = False) -> None:
    """Accumulate d(tensors)/d(leaf) into ``.grad`` of every leaf that requires grad."""
    tensors, grads = _roots(tensors, grad_tensors, "backward")
    _run(tensors, grads, retain_graph, capture=None)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         allow_unused: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs`` as a tuple of Tensors, without
    touching any ``.grad`` (like ``torch.autograd.grad``, first order only)."""
    Tensor = _tensor_module.Tensor
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    capture = {}
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
        capture[id(t) if t.grad_fn is None else (t.grad_fn, t._output_nr)] = i
    outputs, grads = _roots(outputs, grad_outputs, "grad")
    captured = _run(outputs, grads, bool(retain_graph), capture)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(i)
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} was not used to compute the outputs "
                                   "(pass allow_unused=True to get None for it)")
            result.append(None)
        else:
            result.append(Tensor._wrap(g))
    return tuple(result)


def _roots(tensors, grad_tensors, who):
    Tensor = _tensor_module.Tensor
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, (Tensor, np.ndarray)):
        grad_tensors = [grad_tensors]
    else:
        grad_tensors = list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"{who}: got {len(tensors)} tensors but {len(grad_tensors)} gradients")
    grads = []
    for t, g in zip(tensors, grad_tensors):
        if not t._requires_grad:
            raise RuntimeError(f"{who}: tensor of shape {t.shape} does not require grad and has "
                               "no grad_fn (did you forget requires_grad=True, or call it inside "
                               "no_grad()?)")
        if g is None:
            if t.data.size != 1:
                raise RuntimeError(f"{who}: grad can be created implicitly only for scalar "
                                   f"outputs, got shape {t.shape}; pass gradient= of that shape")
            g = np.ones_like(t.data)
        else:
            g = np.asarray(g.data if isinstance(g, Tensor) else g)
            if g.shape != t.shape:
                raise ValueError(f"{who}: gradient has shape {g.shape} but the tensor has shape "
                                 f"{t.shape}")
            g = _contiguous(g.astype(t.dtype, copy=False))
        grads.append(g)
    return tensors, grads


def _run(roots, root_grads, retain_graph, capture):
    captured: dict = {}
    pending: dict = {}  # context -> list of summed gradients, one per output
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            _deliver_leaf(t, g, capture, captured)
        else:
            _add(pending, t.grad_fn, t._output_nr, g)

    # Kahn's algorithm: a node runs once every node that feeds it a gradient has run, so each
    # backward sees the full sum of its output gradients. Iterative, so deep graphs (long RNN
    # unrolls) cannot hit Python's recursion limit.
    deps: dict = {}
    stack = list(pending)
    seen = set(stack)
    while stack:
        node = stack.pop()
        for e in node._edges:
            if e is not None and e[1] >= 0:
                child = e[0]
                deps[child] = deps.get(child, 0) + 1
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
    ready = [n for n in pending if n not in deps]
    while ready:
        node = ready.pop()
        grads = pending.pop(node, None)
        if grads is not None:
            _run_node(node, grads, pending, capture, captured)
        for e in node._edges:
            if e is not None and e[1] >= 0:
                deps[e[0]] -= 1
                if deps[e[0]] == 0:
                    ready.append(e[0])
        if not retain_graph:
            node._release()
    return captured


def _run_node(node, grads, pending, capture, captured):
    if node._released:
        node.saved_tensors  # raises the "second backward" error  # noqa: B018
    grads = [g if g is not None or dtype.kind != "f" else np.zeros(shape, dtype)
             for g, (shape, dtype) in zip(grads, node._out_meta)]
    if node._retained:
        for i, ref in node._retained.items():
            t = ref()
            if t is not None and grads[i] is not None and capture is None:
                _accumulate(t, grads[i])
    if capture is not None:
        for i, g in enumerate(grads):
            slot = capture.get((node, i))
            if slot is not None:
                captured[slot] = g
    in_grads = node._fn.backward(node, *grads)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    if len(in_grads) != len(node._edges):
        raise RuntimeError(f"{node._fn.__name__}.backward returned {len(in_grads)} gradients, "
                           f"expected {len(node._edges)} (one per forward argument)")
    for i, (e, g) in enumerate(zip(node._edges, in_grads)):
        if e is None or g is None:
            continue
        target, nr = e
        if nr < 0:
            g = _fit(g, target.data.shape, target.data.dtype, node, i)
            _deliver_leaf(target, g, capture, captured)
        else:
            shape, dtype = target._out_meta[nr]
            _add(pending, target, nr, _fit(g, shape, dtype, node, i))


def _fit(g, shape, dtype, node, i) -> np.ndarray:
    g = _contiguous(g)
    if g.shape != shape:
        raise RuntimeError(f"{node._fn.__name__}.backward returned a gradient of shape {g.shape} "
                           f"for argument {i}, whose shape is {shape}")
    return g if g.dtype == dtype else g.astype(dtype)


def _add(pending, node, nr, g) -> None:
    slots = pending.get(node)
    if slots is None:
        slots = pending[node] = [None] * len(node._out_meta)
    # Out of place: g may alias an array another branch also received (add passes its gradient
    # through unchanged to both inputs).
    slots[nr] = g if slots[nr] is None else slots[nr] + g


def _deliver_leaf(t, g, capture, captured) -> None:
    if capture is None:
        _accumulate(t, g)
    else:
        slot = capture.get(id(t))
        if slot is not None:
            prev = captured.get(slot)
            captured[slot] = g if prev is None else prev + g


def _accumulate(t, g) -> None:
    if t.grad is None:
        # A copy: g may be shared with other leaves or be the caller's own gradient array, and
        # .grad is later updated in place.
        t.grad = _tensor_module.Tensor._wrap(np.array(g, dtype=t.data.dtype, order="C"))
    else:
        t.grad.data += g


# Last, so that importing either module first works: tensor.py needs the names defined above.
from nnx import tensor as _tensor_module  # noqa: E402
