"""k-nearest-neighbour classification on nnx's distance kernels."""

from __future__ import annotations

import numpy as np

from nnx import _kernels
from nnx.classic import _validation as V

__all__ = ["KNeighborsClassifier", "majority_vote"]

METRICS = ("l2", "l1")


def majority_vote(neighbor_codes, n_classes: int) -> np.ndarray:
    """The winning class of each row of ``neighbor_codes`` (Q, k), int64 codes in
    [0, n_classes), ordered from the nearest neighbour to the farthest.

    The class with the most votes wins. Tie rule: among the classes tied for the most votes,
    the one whose nearest member comes first in the row wins (for kNN: the class of the nearest
    neighbour among the tied classes). Returns int64 codes, shape (Q,).
    """
    codes = np.asarray(neighbor_codes)
    if codes.ndim != 2 or codes.shape[1] == 0:
        raise ValueError(f"majority_vote: neighbor_codes must be (Q, k) with k >= 1, got shape "
                         f"{codes.shape}")
    if codes.dtype.kind not in "iu":
        raise ValueError(f"majority_vote: neighbor_codes must be integer class codes, got "
                         f"{codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(f"majority_vote: codes must lie in [0, {n_classes}), got "
                         f"[{codes.min()}, {codes.max()}]")
    q, k = codes.shape
    rows = np.arange(q)[:, None]
    counts = np.zeros((q, n_classes), dtype=np.int64)
    np.add.at(counts, (rows, codes), 1)
    # first[r, c]: position of class c's nearest member in row r (k if absent). Writing the
    # columns from the farthest to the nearest leaves the smallest position in place.
    first = np.full((q, n_classes), k, dtype=np.int64)
    for j in range(k - 1, -1, -1):
        first[rows[:, 0], codes[:, j]] = j
    tied = counts == counts.max(axis=1, keepdims=True)
    return np.argmin(np.where(tied, first, k + 1), axis=1).astype(np.int64)


class KNeighborsClassifier:
    """Classify a sample by a majority vote among its k nearest training samples.

    ``KNeighborsClassifier(k=5, metric="l2", block_size=2048)``

    ``metric`` is "l2" (Euclidean; the kernel ranks by the squared distance, which gives the
    same order) or "l1" (Manhattan). The distances come from ``nnx._kernels.knn_search``, a C++
    kernel that walks the (queries x training samples) distance matrix in blocks, keeping only
    the k best of each row, so the whole matrix never exists; ``predict`` in addition sends the
    queries in blocks of ``block_size`` rows, so its memory stays bounded for any number of
    queries.

    Ties, both documented and tested:

    - equally distant training samples are ordered by their index in the training set (the
      earlier sample is the nearer one), which also decides which of them are among the k;
    - votes: the class with the most votes among the k wins; among classes tied for the most
      votes, the class of the nearest neighbour among them wins (see ``majority_vote``).

    ``fit(x, y)`` only stores the data (float32 unless x is float64) and ``classes_``, the
    sorted distinct labels; it requires ``k <= n_samples``. ``score`` is the accuracy.
    """

    def __init__(self, k: int = 5, metric: str = "l2", block_size: int = 2048):
        self.k = V.check_positive_int(k, "KNeighborsClassifier", "k")
        self.metric = V.check_choice(metric, METRICS, "KNeighborsClassifier", "metric")
        self.block_size = V.check_positive_int(block_size, "KNeighborsClassifier", "block_size")
        self.classes_ = None
        self._x = self._codes = None

    def __repr__(self) -> str:
        return f"KNeighborsClassifier(k={self.k}, metric={self.metric!r})"

    def fit(self, x, y) -> KNeighborsClassifier:
        who = "KNeighborsClassifier"
        x = np.asarray(x)
        x = V.check_features(x, who, dtype=np.float64 if x.dtype == np.float64 else np.float32)
        classes, codes = V.encode_labels(V.check_targets(y, len(x), who), who)
        if self.k > len(x):
            raise ValueError(f"{who}: k={self.k} is larger than the number of training "
                             f"samples ({len(x)})")
        self._x, self._codes, self.classes_ = x, codes, classes
        return self

    def kneighbors(self, x, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances), each (Q, k): the training samples nearest to each row of x,
        nearest first, as ``nnx._kernels.knn_search`` returns them ("l2" distances squared).
        Note the order: scikit-learn's ``kneighbors`` returns (distances, indices)."""
        k = self.k if k is None else V.check_positive_int(k, "KNeighborsClassifier", "k")
        blocks = list(self._search(self._queries(x), k))
        if not blocks:
            return np.empty((0, k), np.int64), np.empty((0, k), self._x.dtype)
        return (np.concatenate([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks]))

    def predict(self, x) -> np.ndarray:
        """The majority label among the k nearest training samples of each row of x."""
        return self.predict_for_ks(x, [self.k])[self.k]

    def predict_for_ks(self, x, ks) -> dict[int, np.ndarray]:
        """{k: predict(x) with that k} for several k from one neighbour search with max(ks).

        Exact, not an approximation: neighbours are ranked by (distance, training index), a
        total order, so the k nearest are the first k of the max(ks) nearest.
        """
        ks = [V.check_positive_int(k, "KNeighborsClassifier", "k") for k in ks]
        x = self._queries(x)
        out = {k: np.empty(len(x), dtype=np.int64) for k in ks}
        for start, indices, _ in self._search(x, max(ks, default=1)):
            codes = self._codes[indices]
            for k in ks:
                out[k][start:start + len(codes)] = majority_vote(codes[:, :k],
                                                                 len(self.classes_))
        return {k: self.classes_[v] for k, v in out.items()}

    def predict_proba(self, x) -> np.ndarray:
        """The fraction of the k neighbours in each class, (Q, len(classes_))."""
        indices, _ = self.kneighbors(x)
        counts = np.zeros((len(indices), len(self.classes_)))
        np.add.at(counts, (np.arange(len(indices))[:, None], self._codes[indices]), 1)
        return counts / self.k

    def score(self, x, y) -> float:
        """Accuracy: the fraction of samples whose predicted label equals y."""
        return V.accuracy(self.predict(x), y)

    def _search(self, x: np.ndarray, k: int):
        """Yields (first row, indices, distances) for each block of ``block_size`` queries."""
        if k > len(self._x):
            raise ValueError(f"KNeighborsClassifier: k={k} is larger than the number of "
                             f"training samples ({len(self._x)})")
        for start in range(0, len(x), self.block_size):
            indices, distances = _kernels.knn_search(x[start:start + self.block_size], self._x,
                                                     k, self.metric)
            yield start, indices, distances

    def _queries(self, x) -> np.ndarray:
        V.check_fitted(self, "_x")
        x = V.check_features(x, "KNeighborsClassifier", dtype=self._x.dtype)
        V.check_n_features(x, self._x.shape[1], "KNeighborsClassifier")
        return x
