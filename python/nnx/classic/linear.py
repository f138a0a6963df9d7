"""Linear models: least-squares regression, logistic regression and the softmax classifier.

All three compute scores ``x @ coef_.T + intercept_`` and differ in the loss they minimise:

- ``LinearRegression``: mean squared error (or mean absolute error), in closed form with
  ``numpy.linalg.lstsq`` or by gradient descent;
- ``LogisticRegression``: binary cross-entropy of ``sigmoid(score)``;
- ``SoftmaxClassifier``: cross-entropy of ``softmax(scores)`` over C classes.

Gradient descent is written with nnx itself: the parameters are ``nnx.nn.Parameter`` tensors,
the scores come from ``nnx.nn.functional.linear`` (nnx's GEMM), the losses from the fused loss
kernels, the gradients from autograd and the update from ``nnx.optim.SGD``. The batch size
chooses the flavour: ``batch_size=None`` is batch gradient descent (the whole training set per
step), ``1`` is stochastic gradient descent, anything in between is mini-batch.

The optional L2 penalty adds ``l2 * sum(coef_ ** 2)`` to the mean loss; the intercept is never
penalised. Weights start at zero, so a fit is deterministic given ``seed`` (which only orders
the samples of each epoch).
"""

from __future__ import annotations

import numpy as np

from nnx import _kernels, autograd, optim
from nnx.classic import _validation as V
from nnx.nn import functional as F
from nnx.nn.parameter import Parameter
from nnx.tensor import Tensor

__all__ = ["LinearRegression", "LogisticRegression", "SoftmaxClassifier"]


class _GradientDescent:
    """Hyperparameters and the training loop shared by the gradient-descent models."""

    def __init__(self, *, lr, epochs, batch_size, shuffle, seed, l2, fit_intercept, dtype):
        who = type(self).__name__
        self.lr = V.check_nonnegative(lr, who, "lr")
        self.epochs = V.check_positive_int(epochs, who, "epochs")
        self.batch_size = (None if batch_size is None
                           else V.check_positive_int(batch_size, who, "batch_size"))
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.l2 = V.check_nonnegative(l2, who, "l2")
        self.fit_intercept = bool(fit_intercept)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"{who}: dtype must be float32 or float64, got {self.dtype}")
        self.coef_ = None
        self.intercept_ = None
        self.loss_history_ = None
        self._w = self._b = None  # (outputs, d) and (outputs,): what _scores computes with

    def _descend(self, x: np.ndarray, y: np.ndarray, n_outputs: int, data_loss) -> None:
        """Minimises ``data_loss(scores, y) + l2 * |W|^2`` over W (n_outputs, d) and b.

        Sets ``_w``, ``_b`` and ``loss_history_`` (the full-data objective before training and
        after each epoch).
        """
        n, d = x.shape
        weight = Parameter(np.zeros((n_outputs, d), dtype=self.dtype))
        bias = Parameter(np.zeros(n_outputs, dtype=self.dtype)) if self.fit_intercept else None
        params = [weight] + ([bias] if bias is not None else [])

        def objective(xb, yb):
            loss = data_loss(F.linear(xb, weight, bias), yb)
            return loss + self.l2 * (weight * weight).sum() if self.l2 else loss

        x_all, y_all = Tensor(x), Tensor(y)

        def full_objective() -> float:
            with autograd.no_grad():
                return float(objective(x_all, y_all).item())

        opt = optim.SGD(params, lr=self.lr)
        batch = n if self.batch_size is None else min(self.batch_size, n)
        rng = np.random.default_rng(self.seed)
        history = [full_objective()]
        for _ in range(self.epochs):
            order = rng.permutation(n) if self.shuffle and batch < n else np.arange(n)
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                opt.zero_grad()
                objective(Tensor(x[rows]), Tensor(y[rows])).backward()
                opt.step()
            history.append(full_objective())
            if not np.isfinite(history[-1]):
                raise FloatingPointError(f"{type(self).__name__}: gradient descent diverged "
                                         f"(the objective is {history[-1]} after epoch "
                                         f"{len(history) - 1}); lower lr (now {self.lr})")
        self._w = weight.data.copy()
        self._b = bias.data.copy() if bias is not None else np.zeros(n_outputs, self.dtype)
        self.loss_history_ = history

    def _scores(self, x) -> np.ndarray:
        who = type(self).__name__
        V.check_fitted(self, "_w")
        x = V.check_features(x, who, dtype=self._w.dtype)
        V.check_n_features(x, self._w.shape[1], who)
        return x @ self._w.T + self._b

    def _publish(self) -> None:
        """coef_ (outputs, d) and intercept_ (outputs,), as scikit-learn's classifiers have."""
        self.coef_, self.intercept_ = self._w, self._b


class LinearRegression(_GradientDescent):
    """Least-squares linear regression ``y ~ x @ coef_.T + intercept_``.

    ``LinearRegression(solver="lstsq", loss="mse", l2=0.0, lr=0.01, epochs=100,
    batch_size=None, shuffle=True, seed=0, fit_intercept=True, dtype=numpy.float32)``

    The objective is ``mean(loss(prediction - y)) + l2 * sum(coef_ ** 2)``, with ``loss`` "mse"
    (squared error) or "mae" (absolute error).

    - ``solver="lstsq"``: the exact minimiser in closed form, in float64, by
      ``numpy.linalg.lstsq`` (with ``l2 > 0``, ridge regression: the least-squares problem
      augmented with ``sqrt(n * l2) * I`` rows, where n counts the elements of y). Only for
      ``loss="mse"``: the absolute error has no closed form.
    - ``solver="gd"``: gradient descent with nnx autograd and ``optim.SGD(lr)`` for ``epochs``
      passes over the data, ``batch_size`` samples per step (None: all of them, i.e. batch
      gradient descent; 1: stochastic). For "mae" the gradient is the subgradient sign(error).

    ``y`` is (n,) or (n, t); after ``fit``, as in scikit-learn: ``coef_`` (t, d) and
    ``intercept_`` (t,), or for 1-D y ``coef_`` (d,) and ``intercept_`` a float; for "gd" also
    ``loss_history_``, the full-data objective before training and after each epoch.
    ``score`` is the coefficient of determination R^2, as in scikit-learn; ``loss(x, y)`` is
    the mean loss without the penalty.
    """

    SOLVERS = ("lstsq", "gd")
    LOSSES = ("mse", "mae")

    def __init__(self, solver: str = "lstsq", loss: str = "mse", l2: float = 0.0,
                 lr: float = 0.01, epochs: int = 100, batch_size: int | None = None,
                 shuffle: bool = True, seed: int | None = 0, fit_intercept: bool = True,
                 dtype=np.float32):
        super().__init__(lr=lr, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                         seed=seed, l2=l2, fit_intercept=fit_intercept, dtype=dtype)
        self.solver = V.check_choice(solver, self.SOLVERS, "LinearRegression", "solver")
        self.loss_name = V.check_choice(loss, self.LOSSES, "LinearRegression", "loss")
        if solver == "lstsq" and loss != "mse":
            raise ValueError(f"LinearRegression: loss={loss!r} has no closed-form solution; "
                             "use solver='gd'")
        self._one_output = None

    def fit(self, x, y) -> LinearRegression:
        who = "LinearRegression"
        x = V.check_features(x, who, dtype=np.float64 if self.solver == "lstsq" else self.dtype)
        y = V.check_targets(y, len(x), who, allow_2d=True)
        if len(x) == 0:
            raise ValueError(f"{who}: cannot fit on 0 samples")
        self._one_output = y.ndim == 1
        y2 = np.ascontiguousarray(y.reshape(len(x), -1), dtype=x.dtype)
        if not np.all(np.isfinite(y2)):
            raise ValueError(f"{who}: y contains NaN or infinity")
        if self.solver == "lstsq":
            self._least_squares(x, y2)
        else:
            data_loss = F.mse_loss if self.loss_name == "mse" else F.l1_loss
            self._descend(x, y2, y2.shape[1], data_loss)
        if self._one_output:  # scikit-learn's shapes: coef_ (d,), intercept_ a float
            self.coef_, self.intercept_ = self._w[0], float(self._b[0])
        else:
            self.coef_, self.intercept_ = self._w, self._b
        return self

    def _least_squares(self, x: np.ndarray, y: np.ndarray) -> None:
        n, d = x.shape
        design = np.hstack([x, np.ones((n, 1))]) if self.fit_intercept else x
        target = y
        if self.l2:
            # |X w - y|^2 / (n t) + l2 |w|^2, times n t, is a least-squares problem with the
            # extra rows sqrt(n t l2) * I (zero under the intercept column) and target 0.
            penalty = np.zeros((d, design.shape[1]))
            penalty[:, :d] = np.sqrt(y.size * self.l2) * np.eye(d)
            design = np.vstack([design, penalty])
            target = np.vstack([y, np.zeros((d, y.shape[1]))])
        solution, *_ = np.linalg.lstsq(design, target, rcond=None)
        self._w = np.ascontiguousarray(solution[:d].T)
        self._b = solution[d].copy() if self.fit_intercept else np.zeros(y.shape[1])
        self.loss_history_ = None

    def predict(self, x) -> np.ndarray:
        """Predictions (n,) for a model fitted on 1-D y, else (n, t)."""
        out = self._scores(x)
        return out[:, 0] if self._one_output else out

    def loss(self, x, y) -> float:
        """The mean loss ("mse" or "mae") of the predictions, without the L2 penalty."""
        y = V.check_targets(y, len(x), "LinearRegression", allow_2d=True)
        error = self.predict(x).reshape(len(y), -1) - y.reshape(len(y), -1)
        return float(np.mean(error ** 2) if self.loss_name == "mse" else np.mean(np.abs(error)))

    def score(self, x, y) -> float:
        """R^2 = 1 - SS_res / SS_tot (averaged over outputs); 1 is a perfect fit."""
        y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
        residual = ((self.predict(x).reshape(len(x), -1) - y) ** 2).sum(axis=0)
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1.0 - residual / total))


class _GradientClassifier(_GradientDescent):
    """What the two gradient-descent classifiers share: their constructor, ``classes_`` and the
    accuracy as their score."""

    def __init__(self, lr: float = 0.1, epochs: int = 100, batch_size: int | None = None,
                 l2: float = 0.0, shuffle: bool = True, seed: int | None = 0,
                 fit_intercept: bool = True, dtype=np.float32):
        super().__init__(lr=lr, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                         seed=seed, l2=l2, fit_intercept=fit_intercept, dtype=dtype)
        self.classes_ = None

    def score(self, x, y) -> float:
        """Accuracy: the fraction of samples whose predicted label equals y."""
        return V.accuracy(self.predict(x), y)


class LogisticRegression(_GradientClassifier):
    """Binary logistic regression: ``P(y = classes_[1] | x) = sigmoid(x @ coef_.T + b)``.

    ``LogisticRegression(lr=0.1, epochs=100, batch_size=None, l2=0.0, shuffle=True, seed=0,
    fit_intercept=True, dtype=numpy.float32)``

    Minimises the mean binary cross-entropy ``-t log p - (1 - t) log(1 - p)`` (computed from the
    score by the numerically stable fused kernel) plus ``l2 * sum(coef_ ** 2)``, by gradient
    descent as described in ``nnx.classic.linear``. ``y`` holds exactly two distinct labels
    (any values: ``classes_`` is their sorted pair, and the second is the positive class).
    ``coef_`` is (1, d), ``intercept_`` (1,). ``predict_proba`` returns (n, 2) columns for
    ``classes_[0]`` and ``classes_[1]``; ``predict`` picks ``classes_[1]`` when its
    probability is at least 0.5; ``score`` is the accuracy.
    """

    def fit(self, x, y) -> LogisticRegression:
        who = "LogisticRegression"
        x = V.check_features(x, who, dtype=self.dtype)
        classes, codes = V.encode_labels(V.check_targets(y, len(x), who), who, min_classes=2)
        if len(classes) != 2:
            raise ValueError(f"{who}: y must hold exactly 2 classes, got {len(classes)}; use "
                             "SoftmaxClassifier for more")
        target = codes.astype(self.dtype).reshape(-1, 1)
        self._descend(x, target, 1, F.binary_cross_entropy_with_logits)
        self._publish()
        self.classes_ = classes
        return self

    def decision_function(self, x) -> np.ndarray:
        """The scores (logits) ``x @ coef_.T + intercept_``, shape (n,)."""
        return self._scores(x)[:, 0]

    def predict_proba(self, x) -> np.ndarray:
        p = _kernels.act_forward("sigmoid", self.decision_function(x))
        return np.stack([1 - p, p], axis=1)

    def predict(self, x) -> np.ndarray:
        return self.classes_[(self.decision_function(x) >= 0).astype(np.int64)]


class SoftmaxClassifier(_GradientClassifier):
    """Multinomial logistic (softmax) regression: ``P(classes_[c] | x) = softmax(s)_c`` with
    scores ``s = x @ coef_.T + intercept_``.

    ``SoftmaxClassifier(lr=0.1, epochs=100, batch_size=None, l2=0.0, shuffle=True, seed=0,
    fit_intercept=True, dtype=numpy.float32)``

    Minimises the mean cross-entropy of the softmax (nnx's fused log-softmax + NLL kernel) plus
    ``l2 * sum(coef_ ** 2)`` by gradient descent. ``classes_`` are the sorted distinct labels of
    y (at least 2); ``coef_`` is (C, d), ``intercept_`` (C,). ``predict`` returns the most
    probable class (the first of equal scores); ``score`` is the accuracy.
    """

    def fit(self, x, y) -> SoftmaxClassifier:
        who = "SoftmaxClassifier"
        x = V.check_features(x, who, dtype=self.dtype)
        classes, codes = V.encode_labels(V.check_targets(y, len(x), who), who, min_classes=2)
        self._descend(x, codes, len(classes), F.cross_entropy)
        self._publish()
        self.classes_ = classes
        return self

    def decision_function(self, x) -> np.ndarray:
        """The class scores (logits), shape (n, C)."""
        return np.ascontiguousarray(self._scores(x))

    def predict_proba(self, x) -> np.ndarray:
        return _kernels.softmax_forward(self.decision_function(x))

    def predict(self, x) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(x), axis=1)]
