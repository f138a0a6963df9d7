"""Rosenblatt's perceptron: a linear threshold unit trained one sample at a time."""

from __future__ import annotations

import numpy as np

from nnx.classic import _validation as V

__all__ = ["Perceptron"]


class Perceptron:
    """A single neuron with sign activation, trained by Rosenblatt's learning rule.

    ``Perceptron(lr=1.0, max_epochs=100, shuffle=False, seed=0)``

    The two classes of y (any two labels; ``classes_`` is their sorted pair) are coded -1 and
    +1. The output is ``y_hat = sign(w . x + b)`` with ``sign(0) = +1``. Samples are presented
    one at a time, in order (or reshuffled every epoch with ``shuffle=True``), and after each

        w += lr * (y - y_hat) * x,    b += lr * (y - y_hat)

    which changes nothing for a correctly classified sample and moves the boundary towards a
    misclassified one (``y - y_hat = +-2``). Weights start at zero. Training stops after the
    first epoch without a mistake (``converged_ = True``), after ``max_epochs``, or, with
    ``shuffle=False``, as soon as the weights at the start of an epoch repeat those of an
    earlier epoch (``cycled_ = True``): every epoch is then the same deterministic map of the
    weights, so the rule would loop forever without converging. That is what happens on data
    that is not linearly separable, such as XOR; on separable data the perceptron convergence
    theorem guarantees a mistake-free epoch after at most (R / margin)^2 updates.

    After ``fit``: ``coef_`` (d,), ``intercept_`` (float), ``errors_`` (mistakes per epoch),
    ``weights_history_`` ((w, b) at the start of every epoch and at the end), ``n_epochs_``,
    ``converged_`` and ``cycled_``. Integer-valued data with an integer ``lr`` keeps every
    update exact in float64, which makes the cycle test exact too.
    """

    def __init__(self, lr: float = 1.0, max_epochs: int = 100, shuffle: bool = False,
                 seed: int | None = 0):
        self.lr = V.check_nonnegative(lr, "Perceptron", "lr")
        if self.lr == 0:
            raise ValueError("Perceptron: lr must be > 0, got 0")
        self.max_epochs = V.check_positive_int(max_epochs, "Perceptron", "max_epochs")
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.coef_ = None
        self.intercept_ = None
        self.classes_ = None

    def fit(self, x, y) -> Perceptron:
        who = "Perceptron"
        x = V.check_features(x, who, dtype=np.float64)
        classes, codes = V.encode_labels(V.check_targets(y, len(x), who), who, min_classes=2)
        if len(classes) != 2:
            raise ValueError(f"{who}: y must hold exactly 2 classes, got {len(classes)}")
        target = 2.0 * codes - 1.0  # classes_[0] -> -1, classes_[1] -> +1
        w, b = np.zeros(x.shape[1]), 0.0
        rng = np.random.default_rng(self.seed)
        seen = {}
        self.errors_, self.weights_history_ = [], []
        self.converged_ = self.cycled_ = False
        for epoch in range(self.max_epochs):
            state = (w.tobytes(), b)
            self.weights_history_.append((w.copy(), b))
            if not self.shuffle and state in seen:
                self.cycled_ = True
                break
            seen[state] = epoch
            mistakes = 0
            for i in (rng.permutation(len(x)) if self.shuffle else range(len(x))):
                step = self.lr * (target[i] - _sign(x[i] @ w + b))
                if step:
                    w += step * x[i]
                    b += step
                    mistakes += 1
            self.errors_.append(mistakes)
            if mistakes == 0:
                self.converged_ = True
                break
        if not self.cycled_:
            self.weights_history_.append((w.copy(), b))
        self.n_epochs_ = len(self.errors_)
        self.coef_, self.intercept_, self.classes_ = w, float(b), classes
        return self

    def decision_function(self, x) -> np.ndarray:
        """``w . x + b`` for every sample, shape (n,)."""
        V.check_fitted(self, "coef_")
        x = V.check_features(x, "Perceptron", dtype=np.float64)
        V.check_n_features(x, len(self.coef_), "Perceptron")
        return x @ self.coef_ + self.intercept_

    def predict(self, x) -> np.ndarray:
        return self.classes_[(self.decision_function(x) >= 0).astype(np.int64)]

    def score(self, x, y) -> float:
        """Accuracy: the fraction of samples whose predicted label equals y."""
        return V.accuracy(self.predict(x), y)


def _sign(z: float) -> float:
    return 1.0 if z >= 0 else -1.0
