"""nnx.classic against independent numpy computations: least squares and ridge in closed form,
gradient descent written out in numpy, a brute-force kNN with its own vote, the perceptron rule
by hand, and the folds of KFold; plus examples/xor.py and examples/knn_fashion_mnist.py."""

import collections
import importlib.util
import os
import pathlib

import numpy as np
import pytest

from nnx import _kernels, _reference, classic
from nnx.classic import (
    KFold,
    KNeighborsClassifier,
    LinearRegression,
    LogisticRegression,
    NotFittedError,
    Perceptron,
    SoftmaxClassifier,
)

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def regression_data(n=200, d=3, noise=0.3, seed=0, outputs=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    w = rng.standard_normal((d,) if outputs is None else (d, outputs))
    y = x @ w + 0.7 + noise * rng.standard_normal(n if outputs is None else (n, outputs))
    return x, y, w


def lstsq(x, y, intercept=True):
    design = np.hstack([x, np.ones((len(x), 1))]) if intercept else x
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return (solution[:-1], solution[-1]) if intercept else (solution, 0.0)


def ridge(x, y, l2):
    """argmin mean((x w + b - y)^2) + l2 |w|^2 through centred normal equations."""
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    w = np.linalg.solve(xc.T @ xc + len(x) * l2 * np.eye(x.shape[1]), xc.T @ yc)
    return w, ym - xm @ w


# ---------------------------------------------------------------------------------------------
# LinearRegression


def test_closed_form_equals_lstsq():
    x, y, _ = regression_data()
    m = LinearRegression().fit(x, y)
    w, b = lstsq(x, y)
    np.testing.assert_allclose(m.coef_, w, rtol=1e-12, atol=1e-12)
    assert m.coef_.shape == (3,) and isinstance(m.intercept_, float)
    np.testing.assert_allclose(m.intercept_, b, rtol=1e-12)
    np.testing.assert_allclose(m.predict(x), x @ w + b, rtol=1e-10, atol=1e-10)
    assert m.loss(x, y) == pytest.approx(np.mean((x @ w + b - y) ** 2), rel=1e-12)
    assert m.loss(x, y[:, None]) == m.loss(x, y)
    r2 = 1 - np.sum((x @ w + b - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert m.score(x, y) == pytest.approx(r2, rel=1e-12)


def test_closed_form_multi_output_and_no_intercept():
    x, y, _ = regression_data(outputs=2)
    m = LinearRegression().fit(x, y)
    w, b = lstsq(x, y)
    np.testing.assert_allclose(m.coef_, w.T, atol=1e-12)
    np.testing.assert_allclose(m.intercept_, b, atol=1e-12)
    assert m.predict(x).shape == (200, 2)
    m = LinearRegression(fit_intercept=False).fit(x, y[:, 0])
    np.testing.assert_allclose(m.coef_, lstsq(x, y[:, 0], intercept=False)[0], atol=1e-12)
    assert m.intercept_ == 0.0


def test_closed_form_ridge_matches_normal_equations():
    x, y, _ = regression_data()
    m = LinearRegression(l2=0.1).fit(x, y)
    w, b = ridge(x, y, 0.1)
    np.testing.assert_allclose(m.coef_, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.intercept_, b, rtol=1e-10)
    assert np.linalg.norm(m.coef_) < np.linalg.norm(lstsq(x, y)[0])  # shrunk


def test_batch_gradient_descent_converges_to_lstsq():
    x, y, _ = regression_data()
    m = LinearRegression("gd", lr=0.1, epochs=400, dtype=np.float64).fit(x, y)
    w, b = lstsq(x, y)
    np.testing.assert_allclose(m.coef_, w, atol=1e-9)
    np.testing.assert_allclose(m.intercept_, b, atol=1e-9)
    history = np.array(m.loss_history_)
    assert len(history) == 401 and np.all(np.diff(history) <= 1e-15)  # never uphill


def test_gradient_descent_float32_close_to_lstsq():
    x, y, _ = regression_data()
    m = LinearRegression("gd", lr=0.1, epochs=300).fit(x, y)
    assert m.coef_.dtype == np.float32
    w, b = lstsq(x, y)
    np.testing.assert_allclose(m.coef_, w, atol=1e-4)
    np.testing.assert_allclose(m.intercept_, b, atol=1e-4)


def test_gradient_descent_ridge_matches_closed_form():
    x, y, _ = regression_data()
    m = LinearRegression("gd", l2=0.1, lr=0.1, epochs=400, dtype=np.float64).fit(x, y)
    w, b = ridge(x, y, 0.1)
    np.testing.assert_allclose(m.coef_, w, atol=1e-9)
    np.testing.assert_allclose(m.intercept_, b, atol=1e-9)


@pytest.mark.parametrize("batch_size, lr, epochs", [(None, 0.1, 400), (16, 0.05, 100),
                                                     (1, 0.05, 12)])
def test_batch_minibatch_stochastic_reach_lstsq_on_exact_data(batch_size, lr, epochs):
    # Without noise the minimiser fits every sample, so even single-sample gradients vanish
    # there and mini-batch/stochastic descent converge to it exactly (not just on average).
    x, y, _ = regression_data(noise=0.0)
    m = LinearRegression("gd", lr=lr, epochs=epochs, batch_size=batch_size, seed=1,
                         dtype=np.float64).fit(x, y)
    w, b = lstsq(x, y)
    np.testing.assert_allclose(m.coef_, w, atol=1e-7)
    np.testing.assert_allclose(m.intercept_, b, atol=1e-7)


def test_gradient_descent_multi_output():
    x, y, _ = regression_data(outputs=2)
    m = LinearRegression("gd", lr=0.1, epochs=400, dtype=np.float64).fit(x, y)
    w, b = lstsq(x, y)
    np.testing.assert_allclose(m.coef_, w.T, atol=1e-9)
    np.testing.assert_allclose(m.intercept_, b, atol=1e-9)


def test_gradient_descent_equals_numpy_steps():
    # The same mini-batch updates written in numpy: W -= lr * (2/(B) X^T (XW + b - y) + 2 l2 W).
    x, y, _ = regression_data(n=50)
    lr, l2, batch = 0.05, 0.01, 8
    m = LinearRegression("gd", lr=lr, l2=l2, epochs=3, batch_size=batch, seed=5,
                         dtype=np.float64).fit(x, y)
    rng = np.random.default_rng(5)
    w, b = np.zeros(3), 0.0
    for _ in range(3):
        order = rng.permutation(50)
        for s in range(0, 50, batch):
            rows = order[s:s + batch]
            r = x[rows] @ w + b - y[rows]
            w, b = w - lr * (2 * x[rows].T @ r / len(rows) + 2 * l2 * w), b - lr * 2 * r.mean()
    np.testing.assert_allclose(m.coef_, w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.intercept_, b, rtol=1e-12, atol=1e-12)


def test_mae_is_robust_to_outliers():
    x, y, w_true = regression_data(noise=0.05)
    y = y.copy()
    y[:10] += 50.0  # gross outliers
    mae = LinearRegression("gd", loss="mae", lr=0.05, epochs=300, dtype=np.float64).fit(x, y)
    mse = LinearRegression().fit(x, y)
    assert np.abs(mae.coef_ - w_true).max() < 0.05
    assert np.abs(mae.coef_ - w_true).max() < np.abs(mse.coef_ - w_true).max() / 5
    # It minimises the absolute error better than least squares does.
    assert mae.loss(x, y) < np.mean(np.abs(mse.predict(x) - y))


def test_linear_regression_errors():
    x, y, _ = regression_data()
    with pytest.raises(ValueError, match="closed-form"):
        LinearRegression(loss="mae")
    with pytest.raises(ValueError, match="solver"):
        LinearRegression(solver="newton")
    with pytest.raises(ValueError, match="loss"):
        LinearRegression("gd", loss="huber")
    with pytest.raises(ValueError, match="lr"):
        LinearRegression("gd", lr=-1)
    with pytest.raises(ValueError, match="batch_size"):
        LinearRegression("gd", batch_size=0)
    with pytest.raises(ValueError, match="2-D"):
        LinearRegression().fit(x[:, 0], y)
    with pytest.raises(ValueError, match="200 samples but y has 199"):
        LinearRegression().fit(x, y[:-1])
    with pytest.raises(NotFittedError, match="not fitted"):
        LinearRegression().predict(x)
    with pytest.raises(ValueError, match="fitted on 3"):
        LinearRegression().fit(x, y).predict(x[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        LinearRegression().fit(np.full((3, 2), np.nan), np.zeros(3))
    with pytest.raises(FloatingPointError, match="diverged"), np.errstate(all="ignore"):
        LinearRegression("gd", lr=10.0, epochs=500, dtype=np.float64).fit(x * 10, y)


# ---------------------------------------------------------------------------------------------
# LogisticRegression and SoftmaxClassifier


def classification_data(classes=2, n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    centres = np.array([[-2.5, 0.0], [2.5, 0.0], [0.0, 3.0]])[:classes]
    labels = rng.integers(0, classes, n)
    return x + centres[labels], labels


def test_logistic_regression_equals_numpy_gradient_descent():
    x, y = classification_data()
    lr, l2, epochs = 0.3, 0.01, 50
    m = LogisticRegression(lr=lr, l2=l2, epochs=epochs, dtype=np.float64).fit(x, y)
    w, b = np.zeros(2), 0.0
    for _ in range(epochs):  # d/dz of the mean BCE of sigmoid(z) is (p - t) / n
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w, b = w - lr * (x.T @ (p - y) / len(x) + 2 * l2 * w), b - lr * np.mean(p - y)
    np.testing.assert_allclose(m.coef_[0], w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.intercept_[0], b, rtol=1e-10, atol=1e-12)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    np.testing.assert_allclose(m.predict_proba(x), np.stack([1 - p, p], axis=1), atol=1e-10)
    np.testing.assert_array_equal(m.predict(x), (p >= 0.5).astype(int))
    assert m.score(x, y) > 0.9


def test_logistic_regression_labels_and_errors():
    x, y = classification_data()
    names = np.array(["cat", "dog"])[y]
    m = LogisticRegression(epochs=30).fit(x, names)
    assert list(m.classes_) == ["cat", "dog"]
    assert set(m.predict(x)) <= {"cat", "dog"}
    assert m.score(x, names) == pytest.approx(np.mean(m.predict(x) == names))
    x3, y3 = classification_data(classes=3)
    with pytest.raises(ValueError, match="SoftmaxClassifier"):
        LogisticRegression().fit(x3, y3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(x, np.zeros(len(x)))
    with pytest.raises(NotFittedError):
        LogisticRegression().predict_proba(x)


def test_softmax_classifier_equals_numpy_gradient_descent():
    x, y = classification_data(classes=3)
    lr, epochs = 0.5, 40
    m = SoftmaxClassifier(lr=lr, epochs=epochs, dtype=np.float64).fit(x, y)
    w, b = np.zeros((3, 2)), np.zeros(3)
    onehot = np.eye(3)[y]
    for _ in range(epochs):
        z = x @ w.T + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(x)
        w, b = w - lr * g.T @ x, b - lr * g.sum(axis=0)
    np.testing.assert_allclose(m.coef_, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.intercept_, b, rtol=1e-10, atol=1e-12)
    z = x @ w.T + b
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(m.predict_proba(x), p, atol=1e-10)
    np.testing.assert_array_equal(m.predict(x), p.argmax(axis=1))
    assert m.score(x, y) > 0.8


# ---------------------------------------------------------------------------------------------
# Perceptron

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
XOR_Y = np.array([0, 1, 1, 0])


def separable_data(n=80, seed=0, margin=0.5):
    rng = np.random.default_rng(seed)
    w, b = np.array([2.0, -1.0]), 0.5
    x = rng.uniform(-3, 3, (4 * n, 2))
    s = (x @ w + b) / np.linalg.norm(np.append(w, b))
    keep = np.abs(s) > margin
    return x[keep][:n], (s[keep][:n] > 0).astype(int), np.append(w, b)


def test_perceptron_rule_by_hand():
    x, y, _ = separable_data(n=20)
    m = Perceptron(lr=0.5, max_epochs=3).fit(x, y)
    w, b = np.zeros(2), 0.0
    t = 2 * y - 1
    for _ in range(m.n_epochs_):
        for xi, ti in zip(x, t):
            y_hat = 1 if xi @ w + b >= 0 else -1
            w, b = w + 0.5 * (ti - y_hat) * xi, b + 0.5 * (ti - y_hat)
    np.testing.assert_array_equal(m.coef_, w)
    assert m.intercept_ == b


def test_perceptron_converges_on_separable_data():
    x, y, w_star = separable_data()
    m = Perceptron(max_epochs=1000).fit(x, y)
    assert m.converged_ and not m.cycled_ and m.errors_[-1] == 0
    assert m.score(x, y) == 1.0
    # Novikoff's bound: at most (R / margin)^2 updates, with x extended by a constant 1.
    ext = np.hstack([x, np.ones((len(x), 1))])
    radius = np.linalg.norm(ext, axis=1).max()
    margin = np.min((2 * y - 1) * (ext @ w_star)) / np.linalg.norm(w_star)
    assert sum(m.errors_) <= (radius / margin) ** 2


@pytest.mark.parametrize("labels", [[0, 0, 0, 1], [0, 1, 1, 1]])
def test_perceptron_learns_and_or(labels):
    m = Perceptron().fit(XOR_X, labels)
    assert m.converged_ and m.score(XOR_X, labels) == 1.0


def test_no_linear_unit_separates_xor():
    # For every (w1, w2, b): s(0,1) + s(1,0) = w1 + w2 + 2b = s(0,0) + s(1,1). Separating XOR
    # needs s(0,1) >= 0, s(1,0) >= 0 (left side >= 0) with s(0,0) < 0, s(1,1) < 0 (right side
    # < 0): impossible. Checked on random units, plus the best accuracy any of them reaches.
    rng = np.random.default_rng(0)
    w = rng.standard_normal((100_000, 2)) * rng.exponential(10, (100_000, 1))
    b = rng.standard_normal(100_000) * 10
    s = w @ XOR_X.T + b[:, None]
    np.testing.assert_allclose(s[:, 1] + s[:, 2], s[:, 0] + s[:, 3], rtol=1e-12, atol=1e-9)
    correct = ((s >= 0) == XOR_Y.astype(bool)).sum(axis=1)
    assert correct.max() == 3


@pytest.mark.parametrize("lr", [1.0, 0.5, 3.0])
def test_perceptron_cycles_on_xor(lr):
    m = Perceptron(lr=lr, max_epochs=1000).fit(XOR_X, XOR_Y)
    assert m.cycled_ and not m.converged_
    assert min(m.errors_) > 0
    # The final state is one the weights already had at the start of an earlier epoch.
    starts = [(w.tobytes(), b) for w, b in m.weights_history_[:-1]]
    last_w, last_b = m.weights_history_[-1]
    assert (last_w.tobytes(), last_b) in starts
    assert m.score(XOR_X, XOR_Y) < 1.0


def test_perceptron_never_error_free_on_xor_even_shuffled():
    m = Perceptron(max_epochs=300, shuffle=True, seed=3).fit(XOR_X, XOR_Y)
    assert not m.converged_ and m.n_epochs_ == 300 and min(m.errors_) > 0


def test_perceptron_errors():
    with pytest.raises(ValueError, match="exactly 2 classes"):
        Perceptron().fit(XOR_X, [0, 1, 2, 0])
    with pytest.raises(ValueError, match="lr"):
        Perceptron(lr=0)
    with pytest.raises(NotFittedError):
        Perceptron().predict(XOR_X)


def test_xor_example_network_reaches_100_percent():
    xor = load_example("xor")
    model, attempts = xor.solve_xor(seed=0, verbose=False)
    assert xor.accuracy(model) == 1.0
    assert attempts <= 10
    fitted = xor.perceptron_demo()
    assert fitted["AND"].converged_ and fitted["OR"].converged_
    assert fitted["XOR"].cycled_ and not fitted["XOR"].converged_
    assert xor.separability_check(np.random.default_rng(0), trials=10_000) == 0.75


# ---------------------------------------------------------------------------------------------
# kNN: the C++ kernel (through nnx._kernels) against brute force in numpy, ties included


def brute_force_knn(x_train, y_train, x_query, k, metric):
    """Distances in float64, neighbours by (distance, index), then a vote counted in Python:
    most votes, ties to the class met first in the neighbour order."""
    diff = x_query[:, None, :].astype(np.float64) - x_train[None, :, :]
    dist = (diff ** 2).sum(axis=2) if metric == "l2" else np.abs(diff).sum(axis=2)
    predictions = []
    for row in dist:
        order = sorted(range(len(row)), key=lambda i: (row[i], i))[:k]
        labels = [y_train[i] for i in order]
        counts = collections.Counter(labels)
        top = max(counts.values())
        predictions.append(next(lab for lab in labels if counts[lab] == top))
    return np.array(predictions)


def integer_data(n_train=60, n_query=50, d=4, classes=3, seed=0):
    # Small integers: every distance is exact in float32, and many distances and votes tie.
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (n_train, d)).astype(np.float32)
    q = rng.integers(0, 3, (n_query, d)).astype(np.float32)
    return x, rng.integers(0, classes, n_train), q


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("k", [1, 2, 4, 5, 8, 60])
def test_knn_equals_brute_force(metric, k, isa):
    x, y, q = integer_data()
    m = KNeighborsClassifier(k, metric).fit(x, y)
    np.testing.assert_array_equal(m.predict(q), brute_force_knn(x, y, q, k, metric))
    indices, distances = m.kneighbors(q)
    ref_indices, ref_distances = _reference.knn_search(q, x, k, metric)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(distances, ref_distances)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_knn_data_has_the_ties_it_claims_to_test(metric):
    # Guards the test above: its data must produce both kinds of ties for some k.
    x, y, q = integer_data()
    _, dist = _reference.knn_search(q, x, len(x), metric)
    k = 4
    assert np.sum(dist[:, k - 1] == dist[:, k]) > 5  # equal distances across the k-th place
    idx, _ = _reference.knn_search(q, x, k, metric)
    counts = np.stack([np.bincount(row, minlength=3) for row in y[idx]])
    tied = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tied.sum() > 5  # vote ties


def test_knn_block_size_and_dtypes_do_not_change_predictions():
    x, y, q = integer_data(n_query=37)
    expected = brute_force_knn(x, y, q, 5, "l2")
    for block in (1, 7, 36, 37, 1000):
        m = KNeighborsClassifier(5, "l2", block_size=block).fit(x, y)
        np.testing.assert_array_equal(m.predict(q), expected)
    m = KNeighborsClassifier(5, "l2").fit(x.astype(np.float64), y)
    np.testing.assert_array_equal(m.predict(q.astype(np.int64)), expected)


def test_knn_on_real_valued_data():
    rng = np.random.default_rng(1)
    x, q = rng.standard_normal((300, 20)), rng.standard_normal((80, 20))
    y = rng.integers(0, 4, 300)
    for metric in ("l1", "l2"):
        m = KNeighborsClassifier(7, metric).fit(x, y)
        np.testing.assert_array_equal(m.predict(q), brute_force_knn(x, y, q, 7, metric))


def test_knn_uses_the_kernel(monkeypatch):
    calls = []
    real = _kernels.knn_search

    def spy(*args):
        calls.append(args[2:])
        return real(*args)

    monkeypatch.setattr(_kernels, "knn_search", spy)
    x, y, q = integer_data()
    KNeighborsClassifier(3, "l1", block_size=20).fit(x, y).predict(q)
    assert calls == [(3, "l1")] * 3  # 50 queries in blocks of 20


def test_majority_vote_tie_rule():
    vote = classic.majority_vote
    assert vote(np.array([[1, 0, 0, 1]]), 2).tolist() == [1]  # 2-2: class 1 owns the nearest
    assert vote(np.array([[2, 0, 1]]), 3).tolist() == [2]  # three-way tie: the nearest wins
    assert vote(np.array([[0, 1, 1]]), 2).tolist() == [1]  # a majority beats the nearest
    assert vote(np.array([[0, 2, 1, 2], [3, 3, 3, 3]]), 4).tolist() == [2, 3]
    assert vote(np.array([[1, 0, 0, 1, 1, 0]]), 2).tolist() == [1]
    assert vote(np.array([[0, 1, 2, 2, 1]]), 3).tolist() == [1]  # 1 and 2 tie; 1 is nearer
    with pytest.raises(ValueError, match="codes must lie"):
        vote(np.array([[0, 5]]), 3)


def test_knn_tie_rule_through_the_classifier():
    # One feature; the query at 0 has neighbours at distances 1 (class "b"), 2 ("a"), 2 ("a"),
    # 3 ("b"): a 2-2 vote with k = 4, which "b" wins by owning the nearest neighbour. With
    # k = 3 "a" wins outright.
    x = np.array([[2.0], [-1.0], [-2.0], [3.0], [10.0]])
    y = np.array(["a", "b", "a", "b", "a"])
    m = KNeighborsClassifier(4, "l1").fit(x, y)
    assert m.predict([[0.0]]).tolist() == ["b"]
    assert KNeighborsClassifier(3, "l1").fit(x, y).predict([[0.0]]).tolist() == ["a"]
    # Equal distances: index order decides who is nearer. Samples 0 and 2 are both at 2.
    idx, dist = m.kneighbors([[0.0]])
    assert idx.tolist() == [[1, 0, 2, 3]] and dist.tolist() == [[1.0, 2.0, 2.0, 3.0]]
    np.testing.assert_allclose(m.predict_proba([[0.0]]), [[0.5, 0.5]])


def test_predict_for_ks_equals_separate_models():
    x, y, q = integer_data()
    m = KNeighborsClassifier(1, "l2").fit(x, y)
    many = m.predict_for_ks(q, [1, 3, 6, 9])
    for k, predicted in many.items():
        np.testing.assert_array_equal(predicted, KNeighborsClassifier(k, "l2").fit(x, y).predict(q))


def test_knn_errors():
    x, y, q = integer_data()
    with pytest.raises(ValueError, match="metric 'cosine'"):
        KNeighborsClassifier(3, "cosine")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        KNeighborsClassifier(0)
    with pytest.raises(ValueError, match="k=61 is larger than the number of training samples"):
        KNeighborsClassifier(61).fit(x, y)
    with pytest.raises(NotFittedError, match="not fitted"):
        KNeighborsClassifier().predict(q)
    with pytest.raises(ValueError, match="fitted on 4"):
        KNeighborsClassifier(3).fit(x, y).predict(q[:, :3])
    with pytest.raises(ValueError, match="2-D"):
        KNeighborsClassifier(3).fit(x, y).predict(q[0])
    with pytest.raises(ValueError, match="larger than the number"):
        KNeighborsClassifier(3).fit(x, y).kneighbors(q, k=100)


# ---------------------------------------------------------------------------------------------
# KFold and cross-validation


@pytest.mark.parametrize("n, splits", [(10, 2), (10, 3), (23, 5), (5, 5), (101, 10)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_kfold_partitions_the_data(n, splits, shuffle):
    folds = list(KFold(splits, shuffle=shuffle, seed=4).split(n))
    assert len(folds) == splits
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(n))  # every index tested exactly once
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert set(train.tolist()) | set(test.tolist()) == set(range(n))
        assert not set(train.tolist()) & set(test.tolist())
        assert len(train) + len(test) == n


def test_kfold_order_and_seeds():
    assert [t.tolist() for _, t in KFold(3).split(7)] == [[0, 1, 2], [3, 4], [5, 6]]
    a = [t.tolist() for _, t in KFold(3, shuffle=True, seed=1).split(30)]
    b = [t.tolist() for _, t in KFold(3, shuffle=True, seed=1).split(np.zeros((30, 2)))]
    c = [t.tolist() for _, t in KFold(3, shuffle=True, seed=2).split(30)]
    assert a == b and a != c
    with pytest.raises(ValueError, match="at least 2"):
        KFold(1)
    with pytest.raises(ValueError, match="cannot split 3 samples into 5 folds"):
        list(KFold(5).split(3))


def test_cross_validate_returns_per_fold_scores():
    x, y = classification_data(classes=3, n=90)
    cv = KFold(5, shuffle=True, seed=0)
    scores = classic.cross_validate(lambda: KNeighborsClassifier(3), x, y, cv)
    expected = []
    for train, test in cv.split(len(x)):
        predicted = brute_force_knn(x[train], y[train], x[test], 3, "l2")
        expected.append(np.mean(predicted == y[test]))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=0)
    assert classic.cross_validate(lambda: KNeighborsClassifier(3), x, y, 3).shape == (3,)


def test_cross_validate_knn_equals_grid_search():
    x, y = classification_data(classes=3, n=90, seed=2)
    cv = KFold(4, shuffle=True, seed=0)
    fast = classic.cross_validate_knn(x, y, [1, 3, 7], ["l1", "l2"], cv)
    slow = classic.grid_search(lambda k, metric: KNeighborsClassifier(k, metric),
                               {"k": [1, 3, 7], "metric": ["l1", "l2"]}, x, y, cv)
    assert fast.params == slow.params
    np.testing.assert_array_equal(fast.scores, slow.scores)
    assert fast.scores.shape == (6, 4)
    assert fast.best_params == slow.params[int(np.argmax(slow.scores.mean(axis=1)))]
    assert "k=7, metric='l2'" in fast.table()
    with pytest.raises(ValueError, match="metric"):
        classic.cross_validate_knn(x, y, [1], ["l3"], cv)
    with pytest.raises(ValueError, match="larger than the number"):
        classic.cross_validate_knn(x[:8], y[:8], [7], ["l2"], 4)


def test_grid_search_errors():
    x, y = classification_data()
    with pytest.raises(ValueError, match="non-empty"):
        classic.grid_search(KNeighborsClassifier, {}, x, y)
    with pytest.raises(ValueError, match="grid\\['k'\\]"):
        classic.grid_search(KNeighborsClassifier, {"k": 3}, x, y)


# ---------------------------------------------------------------------------------------------
# The examples that need data (skipped without $NNX_DATA_DIR)

needs_data = pytest.mark.skipif(not os.environ.get("NNX_DATA_DIR"),
                                reason="set NNX_DATA_DIR to the folder with fashion-mnist/ to "
                                "run the Fashion-MNIST example")


@needs_data
def test_knn_fashion_mnist_example(capsys):
    knn = load_example("knn_fashion_mnist")
    assert knn.main(["--subset", "600", "--test-subset", "200", "--ks", "1,5",
                     "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "best: k = " in out
    accuracy = float(out.split("test accuracy of")[1].split(":")[1].split()[0])
    assert accuracy > 0.6  # 10 classes: chance is 0.1


def test_linear_regression_example_time_series():
    example = load_example("linear_regression")
    results = example.time_series(length=300, train_steps=100, max_lags=20, epochs=50, seed=0)
    train = {lags: r[0] for lags, r in results.items()}
    held_out = {lags: r[1] for lags, r in results.items()}
    assert train[2] < 0.6 * train[1]  # two past values explain the oscillation, one cannot
    assert train[20] < train[2]  # more features always fit the training part better
    assert held_out[20] > held_out[2]  # ...but not the held-out part
