"""Inputs for the fuzzer (see ``fuzz_worker``): the pools of bad values, drawing, the
mutations that break valid arguments, and short descriptions of what was passed."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st

FLOATS = (np.float32, np.float64)
OTHER_DTYPES = (np.int32, np.int64, np.bool_, np.float16, np.complex64, np.uint8, object)
BAD_INTS = (0, -1, 1, 2, -2**31, 2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, -2**63, 2**64)
BAD_FLOATS = (float("nan"), float("inf"), float("-inf"), -1.0, 0.0, 1e300, -1e-300, 5e-324,
              2.0**64)
BAD_OBJECTS = (None, "x", object(), [1.0, 2.0], 3, 2.5, (1,), {"a": 1}, b"\x00")
BAD_STRINGS = ("", "RELU", "relu\x00", "\u00e9", "none ", "l3", "mean\n")
# Layout mutations keep the values: the result must equal that of a contiguous copy.
LAYOUTS = ("strided", "reversed", "fortran", "unaligned")


@dataclasses.dataclass
class TArg:
    """A Tensor argument, drawn as its data: the call turns it into a Tensor."""

    array: object
    requires_grad: bool = False


class Draw:
    """Small helpers over hypothesis' ``data.draw``."""

    def __init__(self, data):
        self.data = data
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))

    def pick(self, options):
        return self.data.draw(st.sampled_from(list(options)))

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def bool(self) -> bool:
        return self.data.draw(st.booleans())

    def float(self, lo: float, hi: float) -> float:
        return self.data.draw(st.floats(lo, hi, allow_nan=False))

    def size(self, hi: int = 6) -> int:
        """A dimension: mostly small, with 0 and 1 often."""
        return self.pick((0, 1, 1, 2, 3, 4, 5, hi))

    def values(self, shape, dtype) -> np.ndarray:
        """An array of ``shape``: normal noise, or one of the special value patterns."""
        kind = self.pick(("normal", "normal", "normal", "zeros", "nan", "inf", "huge", "tiny"))
        a = self.rng.standard_normal(shape)
        if kind == "zeros":
            a = np.zeros(shape)
        elif kind == "huge":
            a = a * 1e38
        elif kind == "tiny":
            a = a * 1e-42
        elif kind in ("nan", "inf") and a.size:
            special = np.nan if kind == "nan" else np.inf
            mask = self.rng.random(shape) < 0.3
            a = np.where(mask, special * np.sign(a + 0.5), a)
        with np.errstate(over="ignore"):
            return np.asarray(a, dtype=dtype)

    def array(self, shape, dtype=np.float32) -> np.ndarray:
        return self.values(shape, dtype)


# ---------------------------------------------------------------------------------------------
# Mutations


def _relayout(a: np.ndarray, how: str) -> np.ndarray:
    """A view with the values of ``a`` but another memory layout."""
    if how == "strided":
        big = np.empty(a.shape[:-1] + (2 * a.shape[-1],) if a.ndim else (2,), a.dtype)
        view = big[..., ::2] if a.ndim else big[::2].reshape(())
        view[...] = a
        return view
    if how == "reversed":
        if a.ndim == 0:
            return a.copy()
        return np.ascontiguousarray(a[::-1])[::-1]
    if how == "fortran":
        return np.asfortranarray(a)
    # unaligned: the data starts one byte past an aligned address.
    raw = np.empty(a.nbytes + 1, np.uint8)
    view = raw[1:].view(a.dtype).reshape(a.shape) if a.size else a.copy()
    view[...] = a
    return view


def _mutate_array(d: Draw, a: np.ndarray, others: list, notes: list, layout: list):
    try:
        return _mutate_array_unchecked(d, a, others, notes, layout)
    except Exception:  # noqa: BLE001
        # A mutation numpy cannot make (a relayout of a huge broadcast view, inf to int of an
        # object array): keep `a`.
        return a


def _mutate_array_unchecked(d: Draw, a: np.ndarray, others: list, notes: list, layout: list):
    what = d.pick(("dtype", "dtype", "layout", "layout", "readonly", "shape", "ndim", "zero",
                   "special", "object", "alias", "broadcast", "huge-empty"))
    if what == "dtype":
        dt = d.pick([t for t in FLOATS if t != a.dtype] + list(OTHER_DTYPES))
        with np.errstate(all="ignore"):
            new = a.astype(dt) if dt is not object else a.astype(object)
        notes.append(f"dtype {np.dtype(dt)}")
        return new
    if what == "layout":
        how = d.pick(LAYOUTS)
        notes.append(how)
        layout.append(how)
        return _relayout(a, how)
    if what == "readonly":
        a = a.copy()
        a.flags.writeable = False
        notes.append("read-only")
        return a
    if what == "shape" and a.ndim:
        axis = d.int(0, a.ndim - 1)
        n = a.shape[axis] + d.pick((-1, 1, 2)) if a.shape[axis] else 1
        shape = list(a.shape)
        shape[axis] = max(n, 0)
        notes.append(f"shape {tuple(shape)}")
        return d.array(tuple(shape), a.dtype)
    if what == "ndim":
        if a.ndim >= 2 and d.bool():
            notes.append("first two axes merged")
            return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])
        if a.ndim == 1 and a.size and d.bool():
            notes.append("0-d")
            return a[:1].reshape(())
        notes.append("one axis more")
        return a[None]
    if what == "zero" and a.ndim:
        axis = d.int(0, a.ndim - 1)
        shape = list(a.shape)
        shape[axis] = 0
        notes.append(f"zero-size {tuple(shape)}")
        return np.zeros(tuple(shape), a.dtype)
    if what == "special":
        a = a.copy()
        if a.dtype.kind == "f" and a.size:
            value = d.pick((np.nan, np.inf, -np.inf, np.finfo(a.dtype).max, 0.0))
            a.flat[d.int(0, a.size - 1)] = value
            notes.append(f"one element {value}")
        return a
    if what == "object":
        small = a.size < 1000 and all(n < 1000 for n in a.shape)
        value = d.pick(BAD_OBJECTS + ((a.tolist(),) if small else ()))
        notes.append(f"replaced by {type(value).__name__}")
        return value
    if what == "alias" and others:
        notes.append("aliased with another argument")
        return d.pick(others)
    if what == "broadcast":
        # More than 2**32 elements in no memory (stride 0, read-only).
        shape = _big_shape(d, max(a.ndim, 1), 2**16 + 1)
        notes.append(f"broadcast to {shape}")
        return np.broadcast_to(np.zeros((), a.dtype), shape)
    if what == "huge-empty":
        # Zero elements, but the product of the other sizes overflows 32 bits.
        shape = list(_big_shape(d, max(a.ndim, 2), 2**31 + 3))
        shape[d.int(0, len(shape) - 1)] = 0
        notes.append(f"empty {tuple(shape)}")
        return np.empty(tuple(shape), a.dtype)
    return a


def _big_shape(d: Draw, ndim: int, big: int) -> tuple:
    """A shape whose size exceeds 2**32 but that numpy can still describe (< 2**62)."""
    shape = [d.pick((1, 3, big)) for _ in range(ndim)]
    shape[d.int(0, ndim - 1)] = big
    size = 1
    for i, n in enumerate(shape):
        if size * n >= 2**60:
            shape[i] = 1
        size *= shape[i]
    if size <= 2**32 and ndim >= 2:
        shape[0] = shape[1] = 2**16 + 1
    return tuple(shape)


def _mutate_value(d: Draw, v, others: list, notes: list, layout: list):
    if isinstance(v, np.ndarray):
        return _mutate_array(d, v, others, notes, layout)
    if isinstance(v, TArg):
        what = d.pick(("data", "data", "data", "data", "requires_grad", "plain"))
        if what == "requires_grad":
            notes.append(f"requires_grad={not v.requires_grad}")
            return TArg(v.array, not v.requires_grad)
        if what == "plain":
            notes.append("an ndarray instead of a Tensor")
            return v.array
        new = _mutate_array(d, v.array, others, notes, layout)
        return TArg(new, v.requires_grad) if isinstance(new, np.ndarray) else new
    if isinstance(v, bool):
        new = d.pick((2, None, "yes", np.bool_(True), 1.0))
    elif isinstance(v, int):
        new = d.pick(BAD_INTS + (True, 1.5, float("nan"), None, "1"))
    elif isinstance(v, float):
        new = d.pick(BAD_FLOATS + (None, "x", 1))
    elif isinstance(v, str):
        new = d.pick(BAD_STRINGS + (None, 3))
    elif isinstance(v, (tuple, list)):
        how = d.pick(("one", "one", "all", "whole")) if v else "whole"
        if how != "whole":
            new = list(v)
            for i in range(len(v)) if how == "all" else [d.int(0, len(v) - 1)]:
                new[i] = _mutate_value(d, v[i], others, notes, layout)
            return type(v)(new)
        new = d.pick(((), (1,), (1, 2, 3), None, list(v), 2, "ab"))
    elif v is None:
        new = d.pick((np.ones(3, np.float32), np.ones((2, 2), np.float64), [1.0], 5, "abc",
                      np.ones(0, np.int64)))
    else:
        new = d.pick(BAD_OBJECTS)
    notes.append(f"{_short(v)} -> {_short(new)}")
    return new


def mutate(d: Draw, args: list, kwargs: dict, keep_tensor=frozenset()):
    """Breaks 0 to 3 of the arguments; returns (args, kwargs, notes, layout mutations). A
    Tensor argument at a position in ``keep_tensor`` stays a Tensor (``self`` of a method)."""
    keys = list(range(len(args))) + list(kwargs)
    count = d.pick((0, 1, 1, 1, 2, 3)) if keys else 0
    notes: list = []
    layout: list = []
    args = list(args)
    kwargs = dict(kwargs)
    arrays = [v.array if isinstance(v, TArg) else v for v in args + list(kwargs.values())
              if isinstance(v, (np.ndarray, TArg))]
    for _ in range(count):
        k = d.pick(keys)
        before = len(notes)
        if isinstance(k, int):
            new = _mutate_value(d, args[k], [a for a in arrays if a is not args[k]], notes,
                                layout)
            if k not in keep_tensor or isinstance(new, TArg):
                args[k] = new
        else:
            kwargs[k] = _mutate_value(d, kwargs[k], [a for a in arrays if a is not kwargs[k]],
                                      notes, layout)
        notes[before:] = [f"[{k}] {n}" for n in notes[before:]]
    if count < 3 and d.pick((False, False, False, True)):
        # An extra positional argument, or a keyword nobody takes.
        if d.bool():
            args.append(d.pick(BAD_OBJECTS))
            notes.append("one positional argument too many")
        else:
            kwargs["bogus"] = 1
            notes.append("unknown keyword")
    return args, kwargs, notes, layout


# ---------------------------------------------------------------------------------------------
# Describing inputs


def _short(v) -> str:
    if isinstance(v, np.ndarray):
        flags = []
        if not v.flags.c_contiguous:
            flags.append("non-C-contiguous")
        if not v.flags.writeable:
            flags.append("read-only")
        if not v.flags.aligned:
            flags.append("unaligned")
        extra = ""
        if v.dtype.kind in "fc" and v.size and v.size < 1 << 24:
            with np.errstate(all="ignore"):
                finite = np.isfinite(v)
            if not finite.all():
                extra = f", {int(v.size - finite.sum())} non-finite"
        return (f"array(shape={v.shape}, dtype={v.dtype}, strides={v.strides}"
                f"{', ' + ' '.join(flags) if flags else ''}{extra})")
    if isinstance(v, TArg):
        return f"Tensor({_short(v.array)}{', requires_grad' if v.requires_grad else ''})"
    if isinstance(v, (list, tuple)) and len(v) <= 8 and any(
            isinstance(x, (np.ndarray, TArg)) for x in v):
        inner = ", ".join(_short(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner})"
    if isinstance(v, (list, tuple)) and len(v) > 8:
        return f"{type(v).__name__} of {len(v)}"
    if hasattr(v, "_data") and isinstance(getattr(v, "_data"), np.ndarray):
        return f"Tensor({_short(v._data)})"
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def describe(args, kwargs) -> str:
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"
