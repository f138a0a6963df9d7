"""Choosing hyperparameters by k-fold cross-validation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from nnx.classic import _validation as V
from nnx.classic.neighbors import KNeighborsClassifier

__all__ = ["GridSearchResult", "KFold", "cross_validate", "cross_validate_knn", "grid_search"]


class KFold:
    """Splits n samples into ``n_splits`` folds; each fold is the test set once.

    ``KFold(n_splits=5, shuffle=False, seed=None)``

    Without shuffling the folds are consecutive blocks of indices; with ``shuffle=True`` the
    indices are permuted first by ``numpy.random.default_rng(seed)`` (the same seed gives the
    same folds). The first ``n % n_splits`` folds hold one sample more than the others, so fold
    sizes differ by at most one. The test folds partition ``range(n)``: every index is tested
    exactly once, and the training set of a fold is every other index.
    """

    def __init__(self, n_splits: int = 5, shuffle: bool = False, seed: int | None = None):
        n_splits = V.check_positive_int(n_splits, "KFold", "n_splits")
        if n_splits < 2:
            raise ValueError(f"KFold: n_splits must be at least 2, got {n_splits}")
        self.n_splits = n_splits
        self.shuffle = bool(shuffle)
        self.seed = seed

    def __repr__(self) -> str:
        return f"KFold(n_splits={self.n_splits}, shuffle={self.shuffle}, seed={self.seed})"

    def split(self, n):
        """Yields (train_idx, test_idx), int64 index arrays, once per fold. ``n`` is the number
        of samples, or anything with a length (such as the data itself)."""
        n = n if isinstance(n, (int, np.integer)) else len(n)
        if n < self.n_splits:
            raise ValueError(f"KFold: cannot split {n} samples into {self.n_splits} folds")
        order = np.arange(n, dtype=np.int64)
        if self.shuffle:
            order = np.random.default_rng(self.seed).permutation(order)
        sizes = np.full(self.n_splits, n // self.n_splits)
        sizes[:n % self.n_splits] += 1
        start = 0
        for size in sizes:
            test = order[start:start + size]
            train = np.concatenate([order[:start], order[start + size:]])
            start += size
            yield train, test

    def get_n_splits(self) -> int:
        return self.n_splits


def _as_cv(cv) -> KFold:
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        return KFold(int(cv))
    if not hasattr(cv, "split"):
        raise ValueError(f"cross-validation: cv must be a number of folds or an object with "
                         f"split(n), such as KFold, got {cv!r}")
    return cv


def _data(x, y, who: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    if x.ndim == 0 or len(x) != len(y):
        raise ValueError(f"{who}: x and y must have one entry per sample, got shapes {x.shape} "
                         f"and {y.shape}")
    return x, y


def cross_validate(make_model, x, y, cv=5) -> np.ndarray:
    """Per-fold scores of a fresh model trained on each fold's training part.

    ``make_model()`` returns an unfitted model with ``fit(x, y)`` and ``score(x, y)`` (every
    model in ``nnx.classic``); ``cv`` is a number of folds (``KFold(cv)``, unshuffled) or a
    splitter such as ``KFold(5, shuffle=True, seed=0)``. Returns a float64 array with one score
    per fold, in fold order.
    """
    x, y = _data(x, y, "cross_validate")
    scores = []
    for train, test in _as_cv(cv).split(len(x)):
        model = make_model()
        model.fit(x[train], y[train])
        scores.append(model.score(x[test], y[test]))
    return np.asarray(scores, dtype=np.float64)


@dataclass
class GridSearchResult:
    """What ``grid_search`` found: ``params[i]`` was scored ``scores[i]`` (one per fold)."""

    params: list[dict] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    @property
    def mean_scores(self) -> np.ndarray:
        return self.scores.mean(axis=1)

    @property
    def best_index(self) -> int:
        """The combination with the highest mean score (the first of equal ones)."""
        return int(np.argmax(self.mean_scores))

    @property
    def best_params(self) -> dict:
        return self.params[self.best_index]

    @property
    def best_score(self) -> float:
        return float(self.mean_scores[self.best_index])

    def table(self) -> str:
        """One line per combination: its parameters, mean and standard deviation of scores."""
        lines = []
        for p, s in zip(self.params, self.scores):
            args = ", ".join(f"{k}={v!r}" for k, v in p.items())
            lines.append(f"{args:<30} {s.mean():.4f} +- {s.std():.4f}")
        return "\n".join(lines)


def _combinations(grid: dict) -> list[dict]:
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"grid_search: grid must be a non-empty dict of name -> list of "
                         f"values, got {grid!r}")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") \
                or len(values) == 0:
            raise ValueError(f"grid_search: grid[{name!r}] must be a non-empty list of values, "
                             f"got {values!r}")
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def grid_search(make_model, grid: dict, x, y, cv=5) -> GridSearchResult:
    """Cross-validates ``make_model(**params)`` for every combination of the grid's values.

    ``grid_search(lambda k, metric: KNeighborsClassifier(k, metric),
    {"k": [1, 3, 5], "metric": ["l1", "l2"]}, x, y, cv=KFold(5, shuffle=True, seed=0))``.
    Every combination sees the same folds (the splitter is deterministic for a fixed seed).
    """
    combos = _combinations(grid)
    scores = [cross_validate(lambda p=p: make_model(**p), x, y, cv) for p in combos]
    return GridSearchResult(combos, np.asarray(scores))


def cross_validate_knn(x, y, ks, metrics=("l1", "l2"), cv=5,
                       block_size: int = 2048) -> GridSearchResult:
    """``grid_search`` of ``KNeighborsClassifier`` over ``ks`` x ``metrics``, with one neighbour
    search per fold and metric (for the largest k) instead of one per k.

    The result equals ``grid_search(lambda k, metric: KNeighborsClassifier(k, metric),
    {"k": ks, "metric": metrics}, x, y, cv)`` exactly (see
    ``KNeighborsClassifier.predict_for_ks``), in that order of combinations.
    """
    x, y = _data(x, y, "cross_validate_knn")
    combos = _combinations({"k": list(ks), "metric": list(metrics)})
    for metric in metrics:  # check the metric before any work
        KNeighborsClassifier(1, metric)
    folds = list(_as_cv(cv).split(len(x)))
    scores = np.empty((len(combos), len(folds)))
    for f, (train, test) in enumerate(folds):
        for metric in metrics:
            model = KNeighborsClassifier(1, metric, block_size).fit(x[train], y[train])
            predictions = model.predict_for_ks(x[test], ks)
            for i, p in enumerate(combos):
                if p["metric"] == metric:
                    scores[i, f] = V.accuracy(predictions[p["k"]], y[test])
    return GridSearchResult(combos, scores)
