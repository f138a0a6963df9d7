"""Argument checks shared by the classic models: feature matrices, targets, labels, fitted state.

Every public ``fit``/``predict`` goes through these, so that a bad shape, an unknown option or a
model used before ``fit`` raises a ``ValueError`` naming the model, the argument, what was
expected and what was given.
"""

from __future__ import annotations

import numpy as np


class NotFittedError(ValueError):
    """A model was asked to predict (or score) before ``fit`` was called."""


def check_features(x, who: str, name: str = "x", dtype=None) -> np.ndarray:
    """``x`` as a 2-D C-contiguous float array (n_samples, n_features).

    A 1-D array is rejected rather than guessed at: it could be one sample or one feature.
    ``dtype`` None keeps float32/float64 and converts everything else to float64.
    """
    arr = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    if arr.ndim != 2:
        hint = (" (one feature: x.reshape(-1, 1); one sample: x.reshape(1, -1))"
                if arr.ndim == 1 else "")
        raise ValueError(f"{who}: {name} must be 2-D (n_samples, n_features), got shape "
                         f"{arr.shape}{hint}")
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{who}: {name} must hold numbers, got dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{who}: {name} contains NaN or infinity")
    return arr


def check_targets(y, n: int, who: str, name: str = "y", allow_2d: bool = False) -> np.ndarray:
    """``y`` as an array with one entry (or, with ``allow_2d``, one row) per sample."""
    arr = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    if arr.ndim not in ((1, 2) if allow_2d else (1,)):
        expected = "(n_samples,) or (n_samples, n_targets)" if allow_2d else "(n_samples,)"
        raise ValueError(f"{who}: {name} must have shape {expected}, got {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"{who}: x has {n} samples but {name} has {len(arr)}")
    return arr


def check_n_features(x: np.ndarray, expected: int, who: str) -> None:
    if x.shape[1] != expected:
        raise ValueError(f"{who}: x has {x.shape[1]} features, but the model was fitted on "
                         f"{expected}")


def check_fitted(model, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise NotFittedError(f"{type(model).__name__}: not fitted yet; call fit(x, y) before "
                             "predicting or scoring")


def encode_labels(y: np.ndarray, who: str, min_classes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(classes, codes): the sorted distinct labels and each sample's index into them (int64)."""
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{who}: y contains NaN or infinity")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < min_classes:
        raise ValueError(f"{who}: y must contain at least {min_classes} classes, got "
                         f"{len(classes)} ({classes.tolist()})")
    return classes, codes.reshape(-1).astype(np.int64)


def check_positive_int(value, who: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


def check_nonnegative(value, who: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not value >= 0 or not np.isfinite(value):
        raise ValueError(f"{who}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_choice(value, choices: tuple, who: str, name: str):
    if value not in choices:
        raise ValueError(f"{who}: unknown {name} {value!r}; expected one of "
                         f"{', '.join(repr(c) for c in choices)}")
    return value


def accuracy(predicted: np.ndarray, y) -> float:
    y = np.asarray(y)
    if len(y) == 0:
        return float("nan")
    return float(np.mean(predicted == y))
