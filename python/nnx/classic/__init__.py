"""The classics of a machine-learning course, small and readable, on nnx's kernels.

- ``LinearRegression``: least squares in closed form (``numpy.linalg.lstsq``) or by batch,
  mini-batch or stochastic gradient descent, MSE or MAE loss, optional L2 penalty;
- ``LogisticRegression`` (binary, sigmoid) and ``SoftmaxClassifier`` (C classes), trained by
  gradient descent with nnx autograd and ``nnx.optim.SGD``;
- ``Perceptron``: Rosenblatt's rule, which converges on linearly separable data and cycles
  forever on XOR;
- ``KNeighborsClassifier``: k nearest neighbours with L2 or L1 distances from the C++ kernel
  ``nnx._kernels.knn_search``, majority vote with a documented tie rule (``majority_vote``);
- ``KFold``, ``cross_validate``, ``grid_search`` and ``cross_validate_knn``: choose
  hyperparameters by k-fold cross-validation, with per-fold scores.

Every model has the scikit-learn shape: ``Model(hyperparameters).fit(x, y)`` returns the model,
then ``predict(x)`` and ``score(x, y)``; ``x`` is (n_samples, n_features). Bad input raises
``ValueError`` (``NotFittedError``, a ``ValueError``, when predicting before ``fit``).
"""

from nnx.classic._validation import NotFittedError
from nnx.classic.linear import LinearRegression, LogisticRegression, SoftmaxClassifier
from nnx.classic.model_selection import (
    GridSearchResult,
    KFold,
    cross_validate,
    cross_validate_knn,
    grid_search,
)
from nnx.classic.neighbors import KNeighborsClassifier, majority_vote
from nnx.classic.perceptron import Perceptron

__all__ = [
    "GridSearchResult",
    "KFold",
    "KNeighborsClassifier",
    "LinearRegression",
    "LogisticRegression",
    "NotFittedError",
    "Perceptron",
    "SoftmaxClassifier",
    "cross_validate",
    "cross_validate_knn",
    "grid_search",
    "majority_vote",
]
