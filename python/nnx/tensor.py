"""``nnx.Tensor``: a C-contiguous numpy array plus what reverse-mode autograd needs.

``t.data`` is the ndarray itself, always C-contiguous, so kernels read it without conversion and
``t.numpy()`` hands it out without a copy. Dtypes: float32 (the default for Python numbers and
lists) and float64 (kept when given, used by gradient checks) are differentiable; integer and
bool arrays (labels, masks) are kept as given, and Python ints become int64.

When ``nnx.tensor(array)`` copies: only when the array is not C-contiguous, is float16 (stored
as float32) or when another ``dtype`` is asked for. ``nnx.from_numpy`` never copies and raises
instead. Differences from PyTorch: views made by ``transpose``/``permute`` are contiguous copies
(the data is always C-contiguous), ``reshape``/``view``/basic indexing share memory as in
PyTorch, and in-place methods (``add_``, ``zero_``, ...) are not recorded by autograd: they
raise on a tensor that requires grad while grad mode is on (use ``nnx.no_grad()``).

Version counter, as in PyTorch: ``t._version`` counts in-place changes of the data. It lives in
``t._version_cell``, a one-element list shared by every Tensor viewing the same data
(``detach()``, ``reshape``/``view``, basic indexing, ``Tensor(t)``) and incremented by every
in-place method, ``nnx.nn.init`` function and optimizer step. Backward compares it with the
value recorded when an array was saved for backward and raises instead of computing a wrong
gradient. Writes straight into the array (``t.numpy()[...] = v``) bypass it.
"""

from __future__ import annotations

import collections
import weakref

import numpy as np

from nnx import autograd
from nnx._inplace import InPlaceMixin
from nnx.autograd import _contiguous

__all__ = ["Tensor", "from_numpy", "tensor"]

MinMax = collections.namedtuple("MinMax", ["values", "indices"])


def _as_array(data, dtype=None) -> np.ndarray:
    """The array a new Tensor holds: ``data`` itself whenever possible (see module docstring)."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        arr = np.asarray(data)
        if dtype is None and arr.dtype == np.float64 and not isinstance(data, np.generic):
            dtype = np.float32  # Python floats and lists default to float32
    if dtype is not None:
        dtype = np.dtype(dtype)
    elif arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float32) if arr.dtype.itemsize < 4 else np.dtype(np.float64)
    elif arr.dtype.kind not in "fiub":
        raise TypeError(f"tensor: cannot hold data of dtype {arr.dtype}; expected floating, "
                        "integer or bool values")
    if dtype is not None and dtype != arr.dtype:
        if dtype.kind not in "fiub":
            raise TypeError(f"tensor: unsupported dtype {dtype}")
        arr = arr.astype(dtype, order="C")
    elif not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    return arr


def _operand(x):
    """The other side of a binary operator: a Tensor or a Python scalar (numpy scalars become
    Python ones so that they do not promote float32 to float64), else None."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (np.ndarray, list, tuple)):
        return Tensor(x)
    return None


class Tensor(InPlaceMixin):
    """An n-dimensional array with reverse-mode automatic differentiation."""

    __slots__ = ("__weakref__", "_data", "_output_nr", "_requires_grad", "_version_cell",
                 "grad", "grad_fn")
    # Let numpy defer to Tensor's reflected operators: ndarray + Tensor -> Tensor.__radd__.
    __array_ufunc__ = None
    __hash__ = object.__hash__  # hashable by identity, although == is elementwise

    def __init__(self, data, dtype=None, requires_grad: bool = False) -> None:
        self._data = _as_array(data, dtype)
        # Tensor(t) shares t's array unless it had to convert it, and then shares its version.
        shared = isinstance(data, Tensor) and self._data is data._data
        self._version_cell = data._version_cell if shared else [0]
        self.grad: Tensor | None = None
        self.grad_fn = None
        self._output_nr = 0
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, array: np.ndarray, grad_fn=None, output_nr: int = 0) -> Tensor:
        # Internal constructor: `array` is already a C-contiguous array of a supported dtype.
        t = object.__new__(cls)
        t._data = array
        t._version_cell = [0]
        t.grad = None
        t.grad_fn = grad_fn
        t._output_nr = output_nr
        t._requires_grad = grad_fn is not None
        return t

    # -- data and metadata -------------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """The underlying C-contiguous ndarray (shared, not a copy)."""
        return self._data

    @data.setter
    def data(self, value) -> None:
        # New storage, new version: graphs that saved the old array still hold it unchanged.
        self._data = _as_array(value)
        self._version_cell = [0]

    @property
    def _version(self) -> int:
        """How many in-place changes the data has seen (PyTorch's name)."""
        return self._version_cell[0]

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self.grad_fn is not None:
            raise RuntimeError("requires_grad can only be changed on leaf tensors; use "
                               "detach() to get a leaf")
        if flag and self._data.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require grad, got {self.dtype}")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def device(self) -> str:
        return "cpu"

    def dim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def numel(self) -> int:
        return self._data.size

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python scalar, "
                             f"got shape {self.shape}")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self._data.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def numpy(self) -> np.ndarray:
        """The data as an ndarray, sharing memory. Like PyTorch, refused for a tensor that
        requires grad: use ``t.detach().numpy()``."""
        if self._requires_grad:
            raise RuntimeError("numpy() on a tensor that requires grad; use t.detach().numpy()")
        return self._data

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        if copy:
            arr = arr.copy()
        return arr if dtype is None else arr.astype(dtype, copy=bool(copy))

    def __dlpack__(self, *args, **kwargs):
        return self.numpy().__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(", precision=4)
        extra = ""
        if self.dtype not in (np.float32, np.int64):
            extra += f", dtype={self.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn!r}"
        elif self._requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # -- autograd ----------------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of every leaf it depends on.

        ``gradient`` (same shape) is required unless the tensor has a single element. The graph's
        saved arrays are freed afterwards unless ``retain_graph=True``."""
        autograd.backward(self, gradient, retain_graph=retain_graph)

    def retain_grad(self) -> None:
        """Also fill ``.grad`` of this non-leaf tensor during backward."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad on a tensor that does not require grad")
        if self.grad_fn is None:
            return
        if self.grad_fn._retained is None:
            self.grad_fn._retained = {}
        self.grad_fn._retained[self._output_nr] = weakref.ref(self)

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data (and version counter), cut from the graph."""
        t = Tensor._wrap(self._data)
        t._version_cell = self._version_cell
        return t

    def clone(self) -> Tensor:
        return _ops.Clone.apply(self)

    def contiguous(self) -> Tensor:
        return self  # always C-contiguous

    def cpu(self) -> Tensor:
        return self

    def to(self, dtype) -> Tensor:
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else _ops.Cast.apply(self, dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    # -- arithmetic --------------------------------------------------------------------------

    def __add__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Add.apply(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Sub.apply(self, other)

    def __rsub__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Sub.apply(other, self)

    def __mul__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Mul.apply(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Div.apply(self, other)

    def __rtruediv__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Div.apply(other, self)

    def __pow__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Pow.apply(self, other)

    def __rpow__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.Pow.apply(other, self)

    def __matmul__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.matmul(self, other)

    def __rmatmul__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else _ops.matmul(other, self)

    def __neg__(self):
        return _ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.Abs.apply(self)

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    matmul = __matmul__
    pow = __pow__
    neg = __neg__
    abs = __abs__

    # Comparisons build no graph and return bool tensors.
    def _compare(self, other, op):
        if isinstance(other, Tensor):
            other = other.data
        elif not isinstance(other, (bool, int, float, np.generic, np.ndarray, list, tuple)):
            return NotImplemented  # so that t == None is False, as for other objects
        return Tensor._wrap(_contiguous(np.asarray(op(self._data, other))))

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    # -- elementwise -------------------------------------------------------------------------

    def exp(self):
        return _ops.Exp.apply(self)

    def log(self):
        return _ops.Log.apply(self)

    def sqrt(self):
        return _ops.Sqrt.apply(self)

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return _ops.Clamp.apply(self, min, max)

    clip = clamp

    def relu(self):
        from nnx.nn import functional as F
        return F.relu(self)

    def sigmoid(self):
        from nnx.nn import functional as F
        return F.sigmoid(self)

    def tanh(self):
        from nnx.nn import functional as F
        return F.tanh(self)

    def softmax(self, dim: int = -1):
        from nnx.nn import functional as F
        return F.softmax(self, dim)

    def log_softmax(self, dim: int = -1):
        from nnx.nn import functional as F
        return F.log_softmax(self, dim)

    # -- reductions --------------------------------------------------------------------------

    def sum(self, dim=None, keepdim: bool = False):
        return _ops.Sum.apply(self, _ops.norm_dims(dim, self.ndim), keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        return _ops.Mean.apply(self, _ops.norm_dims(dim, self.ndim), keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False):
        """The maximum; with ``dim``, a (values, indices) pair as in PyTorch."""
        if dim is None:
            return _ops.Extreme.apply(self, np.max)
        return MinMax(*_ops.ExtremeDim.apply(self, np.argmax, _ops.norm_dim(dim, self.ndim),
                                             keepdim))

    def min(self, dim: int | None = None, keepdim: bool = False):
        """The minimum; with ``dim``, a (values, indices) pair as in PyTorch."""
        if dim is None:
            return _ops.Extreme.apply(self, np.min)
        return MinMax(*_ops.ExtremeDim.apply(self, np.argmin, _ops.norm_dim(dim, self.ndim),
                                             keepdim))

    def argmax(self, dim: int | None = None, keepdim: bool = False):
        return _ops.arg_extreme(self, np.argmax, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False):
        return _ops.arg_extreme(self, np.argmin, dim, keepdim)

    # -- shape -------------------------------------------------------------------------------

    def reshape(self, *shape):
        return _shape_ops.reshape(self, shape)

    view = reshape

    def view_as(self, other):
        if not isinstance(other, (Tensor, np.ndarray)):
            raise TypeError(f"view_as: expected a Tensor, got {type(other).__name__}")
        return _shape_ops.reshape(self, other.shape)

    def transpose(self, dim0: int, dim1: int):
        return _shape_ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _shape_ops.permute(self, dims)

    @property
    def T(self):  # noqa: N802 - PyTorch's name
        if self.ndim != 2:
            raise ValueError(f".T needs a 2-D tensor, got shape {self.shape}; use permute")
        return _shape_ops.transpose(self, 0, 1)

    def t(self):
        return self.T

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _shape_ops.flatten(self, start_dim, end_dim)

    def unsqueeze(self, dim: int):
        return _shape_ops.unsqueeze(self, dim)

    def squeeze(self, dim: int | None = None):
        return _shape_ops.squeeze(self, dim)

    def __getitem__(self, index):
        return _shape_ops.Index.apply(self, _ops.index_key(index))


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A leaf Tensor holding ``data`` (an ndarray is shared, not copied, when it is C-contiguous
    and of the requested dtype; Python numbers and lists become float32 or int64)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing ``array``'s memory; raises rather than copy."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if not array.flags.c_contiguous:
        raise ValueError(f"from_numpy: array of shape {array.shape} and strides {array.strides} "
                         "is not C-contiguous; use nnx.tensor(array) to copy it")
    if array.dtype.kind not in "fiub" or array.dtype.kind == "f" and array.dtype not in (
            np.float32, np.float64):
        raise TypeError(f"from_numpy: dtype {array.dtype} is not supported; expected float32, "
                        "float64, an integer type or bool")
    return Tensor._wrap(array)


# The op modules import Tensor from here; imported last so that the class exists by then.
from nnx import _ops, _shape_ops  # noqa: E402
