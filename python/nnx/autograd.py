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

Anomaly mode (``with nnx.autograd.detect_anomaly():``, or ``set_detect_anomaly(True)``) finds
where a NaN or an infinity comes from: every op checks its outputs, and in backward every node
its input gradients, and the first one that produces a non-finite value from finite ones raises
``AnomalyError`` naming the op, the phase, the output or argument, and (in backward) the line of
user code that created the op. Off, it costs one flag test per op.

As in PyTorch, backward raises instead of using a saved array whose tensor was changed in place
after the forward (version counters, see ``nnx.tensor``). A backward may return its incoming
gradient or an array it saved: the engine copies such arrays before a leaf keeps one as its
``.grad``, and hands a fresh array over without copying.
"""

from __future__ import annotations

import functools
import os
import sys
import threading

import numpy as np

from nnx import _memory

_ndarray = np.ndarray

__all__ = ["AnomalyError", "Context", "Function", "backward", "detect_anomaly", "enable_grad",
           "grad", "is_anomaly_enabled", "is_grad_enabled", "no_grad", "set_detect_anomaly",
           "set_grad_enabled"]

# ---------------------------------------------------------------------------------------------
# Grad mode: per thread (as in PyTorch), so a data-loading thread cannot switch it off for the
# training thread.

_mode = threading.local()


def is_grad_enabled() -> bool:
    """Whether ops on tensors that require grad are recorded for backward in this thread."""
    return getattr(_mode, "enabled", True)


def _set_enabled(enabled: bool) -> None:
    _mode.enabled = enabled


class _ModeGuard:
    """Context manager and decorator that switches a mode to ``_enabled`` and restores the
    previous one on exit; subclasses name the mode's getter and setter."""

    _enabled: bool
    _get = staticmethod(is_grad_enabled)
    _set = staticmethod(_set_enabled)

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self):
        self._previous.append(self._get())
        self._set(self._enabled)
        return self

    def __exit__(self, *exc) -> None:
        self._set(self._previous.pop())

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_ModeGuard):  # noqa: N801 - PyTorch's name
    """``with nnx.no_grad():`` or ``@nnx.no_grad()``: build no graph (evaluation, updates)."""

    _enabled = False


class enable_grad(_ModeGuard):  # noqa: N801 - PyTorch's name
    """Record ops again inside a ``no_grad`` block."""

    _enabled = True


class _ModeSwitch(_ModeGuard):
    """Switches the mode when constructed; used with ``with``, switches it back at the end."""

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self._enabled = bool(mode)
        self._previous.append(self._get())
        self._set(self._enabled)

    def __enter__(self):
        return self

    def __call__(self, func):
        raise TypeError(f"{type(self).__name__} is not a decorator")


class set_grad_enabled(_ModeSwitch):  # noqa: N801 - PyTorch's name
    """``set_grad_enabled(mode)`` switches grad mode now; used with ``with`` it switches back."""

    def __call__(self, func):
        raise TypeError("set_grad_enabled is not a decorator; use no_grad() or enable_grad()")


# ---------------------------------------------------------------------------------------------
# Anomaly mode: process-wide, as in PyTorch (a debugging switch, not per-thread state).

_anomaly = False


class AnomalyError(RuntimeError):
    """Raised in anomaly mode by the first op that produces NaN or Inf.

    ``op``: the Function's name (``"Log"``); ``phase``: ``"forward"`` or ``"backward"``;
    ``index``: the output (forward) or argument (backward) that holds the value, or the argument
    that already held it when it came from outside the graph; ``where``: the line of user code
    that called the op (``None`` when unknown).
    """

    def __init__(self, message: str, op: str, phase: str, index: int, where: str | None):
        super().__init__(message)
        self.op, self.phase, self.index, self.where = op, phase, index, where


def is_anomaly_enabled() -> bool:
    """Whether anomaly mode is on (see the module docstring)."""
    return _anomaly


def _set_anomaly(mode: bool) -> None:
    global _anomaly
    _anomaly = bool(mode)


class detect_anomaly(_ModeGuard):  # noqa: N801 - PyTorch's name
    """``with detect_anomaly():`` or ``@detect_anomaly()``: anomaly mode inside, then the
    previous mode. Every op's outputs and every backward's gradients are checked for NaN and
    Inf, which costs a pass over each array: use it to find a bug, not to train."""

    _enabled = True
    _get = staticmethod(is_anomaly_enabled)
    _set = staticmethod(_set_anomaly)


class set_detect_anomaly(_ModeSwitch):  # noqa: N801 - PyTorch's name
    """``set_detect_anomaly(mode)`` switches anomaly mode now; used with ``with`` it switches
    back at the end of the block."""

    _get = staticmethod(is_anomaly_enabled)
    _set = staticmethod(_set_anomaly)


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame() -> str | None:
    """``file:line in function`` of the innermost caller outside the nnx package."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PACKAGE):
        f = f.f_back
    if f is None:
        return None
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"


def _nonfinite(a) -> str | None:
    """``"NaN"``, ``"Inf"`` or None for a floating array (None for anything else)."""
    if type(a) is not _ndarray and not isinstance(a, _ndarray) or a.dtype.kind not in "fc":
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(a).all():
            return None
        return "NaN" if np.isnan(a).any() else "Inf"


def _check_forward(fn, args, outs, ctx) -> None:
    where = _user_frame()
    for k, o in enumerate(outs):
        what = _nonfinite(o)
        if what is None:
            continue
        for i, a in enumerate(args):
            came = _nonfinite(a)
            if came is not None:
                raise AnomalyError(
                    f"anomaly: {fn.__name__} received {came} in argument {i} (shape {a.shape}), "
                    "which no op produced while anomaly mode was on: it comes from the input "
                    "data, a parameter or a change made outside autograd"
                    + (f" (op called at {where})" if where else ""),
                    fn.__name__, "forward", i, where)
        raise AnomalyError(
            f"anomaly: {fn.__name__} produced {what} in output {k} (shape {o.shape}) from finite "
            "inputs" + (f", called at {where}" if where else ""),
            fn.__name__, "forward", k, where)
    if ctx is not None:
        ctx.__dict__["_anomaly_where"] = where


def _check_backward(node, grads, in_grads) -> None:
    name = Context.name(node)
    where = node.__dict__.get("_anomaly_where")
    at = f" (op created at {where})" if where else ""
    for k, g in enumerate(grads):
        what = _nonfinite(g)
        if what is not None:
            raise AnomalyError(
                f"anomaly: the gradient reaching output {k} of {name} holds {what} before its "
                "backward ran: the gradient passed to backward() has it, or the sum of the "
                f"gradients of several uses of the output overflowed{at}",
                node._fn.__name__, "backward", k, where)
    for i, g in enumerate(in_grads):
        what = _nonfinite(g)
        if what is not None:
            raise AnomalyError(
                f"anomaly: {name} produced {what} in the gradient of argument {i} (shape "
                f"{np.shape(g)}) from finite output gradients{at}",
                node._fn.__name__, "backward", i, where)


# ---------------------------------------------------------------------------------------------
# Graph nodes


class Context:
    """The ``ctx`` of one recorded ``Function`` call and the ``grad_fn`` of its outputs.

    Attributes a Function sets on ``ctx`` (``ctx.dim = 1``) live until backward has used them.
    """

    __slots__ = ("__dict__", "_edges", "_fn", "_out_meta", "_released", "_retained", "_saved",
                 "_versions", "needs_input_grad")

    def __init__(self, fn: type, needs_input_grad: tuple) -> None:
        self._fn = fn
        self.needs_input_grad = needs_input_grad
        self._saved: tuple = ()
        self._edges: tuple = ()
        self._out_meta: tuple = ()
        self._retained: dict | None = None
        self._released = False
        # (version cell, version, saved array, argument number or -1 - output number) for each
        # input or output tensor whose data was saved for backward; see _check_versions.
        self._versions: list | tuple = ()

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
        self._versions = ()
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
        # The hot path of every training step: one pass over the arguments, no generators.
        Tensor = _tensor_module.Tensor
        arrays = list(args)
        inputs = []  # (argument number, tensor) of the Tensor arguments
        record = False
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                arrays[i] = a._data
                inputs.append((i, a))
                if a._requires_grad:
                    record = True
        if record and is_grad_enabled():
            needs = [False] * len(args)
            edges = [None] * len(args)
            for i, a in inputs:
                if a._requires_grad:
                    needs[i] = True
                    edges[i] = _edge(a)
            ctx = Context(cls, tuple(needs))
            ctx._edges = tuple(edges)
        else:
            record = False
            ctx = Context(cls, (False,) * len(args))
        out = cls.forward(ctx, *arrays)
        single = not isinstance(out, tuple)
        if single:
            outs = [out if type(out) is _ndarray and out.flags.c_contiguous else
                    _contiguous(out)]
        else:
            outs = [_contiguous(o) for o in out]
        if _anomaly:
            _check_forward(cls, arrays, outs, ctx if record else None)
        if not record:
            results = [Tensor._wrap(o) for o in outs]
        else:
            ctx._out_meta = tuple([(o.shape, o.dtype) for o in outs])
            results = [Tensor._wrap(o, ctx, i) if o.dtype.kind == "f" else Tensor._wrap(o)
                       for i, o in enumerate(outs)]
        if inputs:
            # An output viewing an argument's memory (reshape, basic indexing, a forward
            # returning its argument) is the same data: it shares the argument's version.
            for r in results:
                o = r._data
                root = o.base
                if root is None:  # fresh, unless the forward returned an argument as it was
                    for _, t in inputs:
                        if t._data is o:
                            r._version_cell = t._version_cell
                            break
                    continue
                if not isinstance(root, _ndarray):
                    root = o
                for _, t in inputs:
                    d = t._data
                    if d is root or d.base is root:
                        r._version_cell = t._version_cell
                        break
            if record and ctx._saved:
                ctx._versions = _saved_versions(ctx._saved, inputs, results)
        return results[0] if single else tuple(results)


# Version tracking runs on every op, so it is written for speed: identity tests on array bases,
# no generators. An array's *root* is the array whose memory it views: its base when that is an
# ndarray, else itself. One step suffices because numpy collapses a chain of views to the array
# owning the memory, or to the array wrapping foreign memory (a kernel's result).


def _saved_versions(saved, inputs, results) -> list:
    # Only tensors whose memory backward reads need checking: an op that saved nothing of x
    # (x + y) computes the right gradient whatever happens to x afterwards. Most forwards save
    # their arguments themselves, found by identity; any other saved array is matched by its
    # root against the arguments (a saved view of one) and then the outputs (a saved output).
    # Entries hold the saved array (alive anyway) rather than its shape, which the error message
    # alone needs.
    found = []
    for a in saved:
        if type(a) is not _ndarray and not isinstance(a, _ndarray):
            continue  # None, a number
        for i, t in inputs:
            if t._data is a:
                cell = t._version_cell
                found.append((cell, cell[0], a, i))
                break
        else:
            root = a.base
            if root is None or not isinstance(root, _ndarray):
                root = a
            for i, t in inputs:
                d = t._data
                if d is root or d.base is root:
                    cell = t._version_cell
                    found.append((cell, cell[0], a, i))
                    break
            else:
                k = -1
                for t in results:
                    d = t._data
                    if d is root or d.base is root:
                        cell = t._version_cell
                        found.append((cell, cell[0], a, k))
                        break
                    k -= 1
    return found


def _check_versions(node) -> None:
    for cell, version, saved, i in node._versions:
        if cell[0] != version:
            shape = saved.shape
            what = f"an input of shape {shape} (argument {i})" if i >= 0 else \
                f"an output of shape {shape} (output {-1 - i})"
            raise RuntimeError(
                f"{node._fn.__name__} backward: {what} was modified in place after it was used "
                f"in the forward pass (version {version} -> {cell[0]}), so the gradient would be "
                "wrong; call backward before changing it, or change a copy (t.clone())")


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
    # ids of the arrays this run has handed to someone (a pending slot, a .grad, the caller's
    # own gradient=, a node's saved arrays): a leaf takes a gradient array as its .grad without
    # copying only when it is not among them (see _accumulate). An id that outlives its array
    # and matches a newer one costs a copy, never a wrong gradient.
    handed = {id(g) for g in root_grads}
    for t, g in zip(roots, root_grads):
        if t.grad_fn is None:
            _deliver_leaf(t, g, capture, captured, handed)
        else:
            _add(pending, t.grad_fn, t._output_nr, g, handed)

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
            _run_node(node, grads, pending, capture, captured, handed)
        for e in node._edges:
            if e is not None and e[1] >= 0:
                deps[e[0]] -= 1
                if deps[e[0]] == 0:
                    ready.append(e[0])
        if not retain_graph:
            node._release()
    return captured


def _run_node(node, grads, pending, capture, captured, handed):
    if node._released:
        node.saved_tensors  # raises the "second backward" error  # noqa: B018
    if node._versions:
        _check_versions(node)
    grads = [g if g is not None or dtype.kind != "f" else np.zeros(shape, dtype)
             for g, (shape, dtype) in zip(grads, node._out_meta)]
    if node._retained:
        for i, ref in node._retained.items():
            t = ref()
            if t is not None and grads[i] is not None and capture is None:
                _accumulate(t, grads[i], handed)
    if capture is not None:
        for i, g in enumerate(grads):
            slot = capture.get((node, i))
            if slot is not None:
                captured[slot] = g
    # A backward may return what it kept from the forward as a gradient: never let a leaf own it.
    for a in node._saved:
        handed.add(id(a))
    for a in node.__dict__.values():
        handed.add(id(a))
    in_grads = node._fn.backward(node, *grads)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    if _anomaly:
        _check_backward(node, grads, in_grads)
    if len(in_grads) != len(node._edges):
        raise RuntimeError(f"{node._fn.__name__}.backward returned {len(in_grads)} gradients, "
                           f"expected {len(node._edges)} (one per forward argument)")
    leaves = []
    for i, (e, g) in enumerate(zip(node._edges, in_grads)):
        if e is None or g is None:
            continue
        target, nr = e
        if nr < 0:
            leaves.append((target, _fit(g, target.data.shape, target.data.dtype, node, i)))
        else:
            shape, dtype = target._out_meta[nr]
            _add(pending, target, nr, _fit(g, shape, dtype, node, i), handed)
    # Leaves last: an array this backward also sent to a pending node is then known as handed,
    # so no leaf makes it its .grad (which later accumulations change in place).
    for target, g in leaves:
        _deliver_leaf(target, g, capture, captured, handed)


def _fit(g, shape, dtype, node, i) -> np.ndarray:
    g = _contiguous(g)
    if g.shape != shape:
        raise RuntimeError(f"{node._fn.__name__}.backward returned a gradient of shape {g.shape} "
                           f"for argument {i}, whose shape is {shape}")
    return g if g.dtype == dtype else g.astype(dtype)


def _add(pending, node, nr, g, handed) -> None:
    slots = pending.get(node)
    if slots is None:
        slots = pending[node] = [None] * len(node._out_meta)
    if slots[nr] is None:
        slots[nr] = g
        handed.add(id(g))
    else:
        # Out of place: g may alias an array another branch also received (add passes its
        # gradient through unchanged to both inputs).
        slots[nr] = slots[nr] + g


def _deliver_leaf(t, g, capture, captured, handed) -> None:
    if capture is None:
        _accumulate(t, g, handed)
    else:
        slot = capture.get(id(t))
        if slot is not None:
            prev = captured.get(slot)
            captured[slot] = g if prev is None else prev + g


def _accumulate(t, g, handed) -> None:
    if t.grad is None:
        # .grad is updated in place by later accumulations, so it takes g itself only when g is
        # a writable array of the right dtype that views no other array and that nobody else
        # holds; otherwise a 64-byte aligned copy (the optimizer kernels stream over it).
        base = g.base
        if (id(g) in handed or base is not None and isinstance(base, _ndarray)
                or g.dtype != t._data.dtype or not g.flags.writeable):
            own = _memory.empty(g.shape, t._data.dtype)
            np.copyto(own, g)
            g = own
        else:
            handed.add(id(g))
        t.grad = _tensor_module.Tensor._wrap(g)
    else:
        t.grad.data += g


# Last, so that importing either module first works: tensor.py needs the names defined above.
from nnx import tensor as _tensor_module  # noqa: E402
