"""Transforms: callables applied to each sample, most also to a whole batch at once.

A transform that defines ``apply_batch(x)``, where ``x`` stacks samples along a new first axis
and the result equals stacking the per-sample results, lets datasets such as ``MNIST`` apply it
to the whole array once and keep the ``DataLoader`` fast path.
"""

from __future__ import annotations

import numpy as np


def _unwrap(x):
    """(numpy array, rewrap) for an ndarray or an nnx Tensor, so transforms accept both."""
    if isinstance(x, np.ndarray):
        return x, lambda a: a
    numpy = getattr(x, "numpy", None)
    if callable(numpy):
        from nnx.tensor import Tensor

        return numpy(), Tensor
    return np.asarray(x), lambda a: a


class Standardize:
    """``(x - mean) / std``, with ``mean`` and ``std`` given or fitted on training data.

    ``fit(x)`` takes a batch of samples (first axis = samples). By default it computes one
    scalar mean and std over all values. ``per_channel=True`` computes them per index of axis 1
    (the channels of an (N, C, H, W) image batch, the features of an (N, F) table), stored with
    shape (C, 1, ..., 1) so that they broadcast against one sample (C, H, W) and against a batch
    (N, C, H, W) alike. The std is the population std (ddof=0); a zero std (a constant channel)
    is replaced by 1, so that channel maps to 0 instead of NaN. Statistics are accumulated in
    float64; the output has the input's float dtype (float32 for integer inputs).

    For MNIST scaled to [0, 1], ``fit`` gives mean 0.1307 and std 0.3081 (the usual constants).

    ``version`` counts the changes of ``mean`` and ``std`` (``fit`` or assignment), so that a
    dataset caching its transformed arrays (``MNIST.arrays()``) notices a refit of the same
    object. Changing the ``mean``/``std`` arrays in place is not noticed: refit or assign.
    """

    def __init__(self, mean=None, std=None):
        if (mean is None) != (std is None):
            raise ValueError("Standardize: give both mean and std, or neither (then call fit)")
        self.version = 0
        self._mean = self._std = None
        if mean is not None:
            self._set(np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64))

    @property
    def mean(self):
        return self._mean

    @mean.setter
    def mean(self, value) -> None:
        self._mean = value
        self.version += 1

    @property
    def std(self):
        return self._std

    @std.setter
    def std(self, value) -> None:
        self._std = value
        self.version += 1

    def _set(self, mean: np.ndarray, std: np.ndarray) -> None:
        if np.any(~np.isfinite(mean)) or np.any(~np.isfinite(std)) or np.any(std < 0):
            raise ValueError(f"Standardize: mean and std must be finite and std >= 0, got mean "
                             f"{mean} and std {std}")
        self.mean = mean
        self.std = np.where(std == 0, 1.0, std)

    def fit(self, x, per_channel: bool = False) -> Standardize:
        """Computes mean and std from the batch ``x`` (array, Tensor, or a dataset offering
        ``arrays()``, whose first array is used). Returns ``self``."""
        arrays = getattr(x, "arrays", None)
        if callable(arrays):
            whole = arrays()
            if whole is None:
                raise ValueError("Standardize.fit: the dataset cannot give its data as one array "
                                 "(its transform does not apply to batches); pass an array")
            x = whole[0]
        x, _ = _unwrap(x)
        if x.size == 0:
            raise ValueError("Standardize.fit: empty data")
        if per_channel and x.ndim < 2:
            raise ValueError(f"Standardize.fit: per_channel needs data of shape (N, C, ...), "
                             f"got shape {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim)) if per_channel else None
        mean = x.mean(axis=axes, dtype=np.float64)
        if per_channel:
            mean = mean.reshape((-1,) + (1,) * (x.ndim - 2))
        # Two passes over bounded chunks: as exact as np.std, without a float64 copy of the data.
        squares = np.zeros(mean.shape[:1] if per_channel else ())
        step = max(1, (1 << 22) // max(1, x[0].size))
        for lo in range(0, x.shape[0], step):
            squares += np.square(x[lo:lo + step].astype(np.float64) - mean).sum(axis=axes)
        count = x.size // mean.size
        std = np.sqrt(squares / count).reshape(mean.shape)
        self._set(mean, std)
        return self

    def __call__(self, x):
        if self.mean is None:
            raise RuntimeError("Standardize: call fit(train_data) first, or pass mean and std")
        x, wrap = _unwrap(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        out = np.subtract(x, self.mean.astype(dtype), dtype=dtype)
        np.divide(out, self.std.astype(dtype), out=out)
        return wrap(out)

    # Elementwise with broadcasting: a batch is transformed exactly like each of its samples.
    apply_batch = __call__

    def __repr__(self) -> str:
        if self.mean is None:
            return "Standardize(unfitted)"
        if self.mean.size == 1:
            return f"Standardize(mean={float(self.mean):.4f}, std={float(self.std):.4f})"
        return f"Standardize(mean={self.mean.ravel()}, std={self.std.ravel()})"


class Flatten:
    """Reshapes a sample to 1-D, e.g. a (1, 28, 28) image to the (784,) input of an MLP."""

    def __call__(self, x):
        x, wrap = _unwrap(x)
        return wrap(np.ascontiguousarray(x).reshape(-1))

    def apply_batch(self, x):
        x, wrap = _unwrap(x)
        return wrap(np.ascontiguousarray(x).reshape(x.shape[0], -1))

    def __repr__(self) -> str:
        return "Flatten()"


class Compose:
    """Applies ``transforms`` in order; batch-capable when every one of them is.

    ``version`` changes whenever one of the transforms' ``version`` does (see ``Standardize``).
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        if all(callable(getattr(t, "apply_batch", None)) for t in self.transforms):
            self.apply_batch = self._apply_batch

    @property
    def version(self) -> tuple:
        return tuple((id(t), getattr(t, "version", None)) for t in self.transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def _apply_batch(self, x):
        for t in self.transforms:
            x = t.apply_batch(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"
