"""Every number of examples/worked_examples.py against an independent numpy computation (closed
forms and hand-derived chain rules written here, not nnx), plus the textbook values where the
example is a classic one. No data needed."""

import importlib.util
import math
import pathlib

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "worked_examples.py"


@pytest.fixture(scope="module")
def ex():
    spec = importlib.util.spec_from_file_location("worked_examples", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=tol, atol=tol)


def test_product_gradients(ex):
    r = ex.product_gradients()
    x, y, z = -2.0, 5.0, -4.0
    close(r["q"], x + y)
    close(r["f"], (x + y) * z)
    close(r["df/dx"], z)
    close(r["df/dy"], z)
    close(r["df/dz"], x + y)
    assert (r["f"], r["df/dx"], r["df/dy"], r["df/dz"]) == (-12, -4, -4, 3)


def test_product_gradients_by_finite_differences(ex):
    x, y, z, h = 1.5, -0.25, 2.0, 1e-6
    r = ex.product_gradients(x, y, z)
    f = lambda x, y, z: (x + y) * z  # noqa: E731
    close(r["df/dx"], (f(x + h, y, z) - f(x - h, y, z)) / (2 * h), 1e-8)
    close(r["df/dy"], (f(x, y + h, z) - f(x, y - h, z)) / (2 * h), 1e-8)
    close(r["df/dz"], (f(x, y, z + h) - f(x, y, z - h)) / (2 * h), 1e-8)


def test_sigmoid_neuron(ex):
    r = ex.sigmoid_neuron()
    w, x = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    f = sigmoid(dot)
    local = (1 - f) * f
    close(r["dot"], dot)
    close(r["f"], f)
    close(r["df/dw"], local * np.array([x[0], x[1], 1.0]))
    close(r["df/dx"], local * w[:2])
    close(r["df/dw"], [-0.19661193, -0.39322387, 0.19661193], 1e-7)  # the lecture's numbers
    close(r["df/dx"], [0.39322387, -0.5898358], 1e-7)


def test_sigmoid_neuron_by_finite_differences(ex):
    w, x, h = np.array([0.5, -1.0, 0.25]), np.array([2.0, 1.5]), 1e-6
    r = ex.sigmoid_neuron(tuple(w), tuple(x))
    f = lambda w, x: sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])  # noqa: E731
    e3, e2 = np.eye(3), np.eye(2)
    close(r["df/dw"], [(f(w + h * e, x) - f(w - h * e, x)) / (2 * h) for e in e3], 1e-8)
    close(r["df/dx"], [(f(w, x + h * e) - f(w, x - h * e)) / (2 * h) for e in e2], 1e-8)


def network_by_hand(x, w_hidden, w_out, target, lr):
    """Forward pass and the backpropagation deltas of E = 1/2 (t - o)^2, written out."""
    x, wh, wo = (np.asarray(a, dtype=np.float64) for a in (x, w_hidden, w_out))
    h = sigmoid(wh @ x)
    o = sigmoid(wo @ h)
    delta_out = (o - target) * o * (1 - o)  # dE/d(net of the output unit)
    grad_wo = delta_out * h
    delta_hidden = delta_out * wo * h * (1 - h)  # dE/d(net of each hidden unit)
    grad_wh = np.outer(delta_hidden, x)
    new_wh, new_wo = wh - lr * grad_wh, wo - lr * grad_wo
    new_h = sigmoid(new_wh @ x)
    new_o = sigmoid(new_wo @ new_h)
    return dict(h=h, o=o, e=0.5 * (target - o) ** 2, grad_wh=grad_wh, grad_wo=grad_wo,
                new_wh=new_wh, new_wo=new_wo, new_h=new_h, new_o=new_o,
                new_e=0.5 * (target - new_o) ** 2)


@pytest.mark.parametrize("args", [
    {},
    dict(x=(1.0, -0.5), w_hidden=((0.3, -0.2), (0.7, 0.1)), w_out=(-0.4, 0.6), target=0.9,
         lr=0.5),
])
def test_backprop_step(ex, args):
    r = ex.backprop_step(**args)
    full = dict(x=(0.35, 0.9), w_hidden=((0.1, 0.8), (0.4, 0.6)), w_out=(0.3, 0.9), target=0.5,
                lr=1.0) | args
    m = network_by_hand(**full)
    close(r["hidden"], m["h"])
    close(r["output"], m["o"])
    close(r["error"], m["e"])
    close(r["dE/dw_hidden"], m["grad_wh"])
    close(r["dE/dw_out"], m["grad_wo"])
    close(r["new w_hidden"], m["new_wh"])
    close(r["new w_out"], m["new_wo"])
    close(r["new hidden"], m["new_h"])
    close(r["new output"], m["new_o"])
    close(r["new error"], m["new_e"])
    assert r["new error"] < r["error"]  # one step downhill


def test_backprop_step_textbook_values(ex):
    # The classic worked example, whose published numbers carry 3-4 rounded digits: output
    # 0.6903 before, output weights 0.272 and 0.873 and output 0.682 after one step.
    r = ex.backprop_step()
    assert round(r["output"], 4) == 0.6903
    np.testing.assert_allclose(r["new w_out"], [0.272, 0.873], atol=5e-4)
    assert round(r["new output"], 3) == 0.682


def test_softmax_1_to_9(ex):
    r = ex.softmax_1_to_9()
    z = np.arange(1.0, 10.0)
    expected = np.exp(z) / np.exp(z).sum()
    close(r["softmax"], expected)
    close(r["sum"], 1.0)
    # softmax is invariant to shifts: each ratio p[i+1]/p[i] is e.
    close(r["softmax"][1:] / r["softmax"][:-1], np.full(8, math.e), 1e-12)


def test_logit(ex):
    r = ex.logit()
    close(r["logit"], math.log(0.9 / 0.1))
    close(r["logit"], 2.1972245773362196)
    close(r["sigmoid(logit)"], 0.9)
    close(ex.logit(0.25)["logit"], math.log(0.25 / 0.75))


def test_cross_entropy_one_hot(ex):
    r = ex.cross_entropy_one_hot()
    p = np.array([0.2, 0.7, 0.1])
    t = np.array([0.0, 1.0, 0.0])
    close(r["cross-entropy"], -np.sum(t * np.log(p)))
    close(r["cross-entropy"], -math.log(0.7))
    close(r["nll_loss"], -math.log(0.7))
    close(ex.cross_entropy_one_hot(2, (0.5, 0.3, 0.2))["cross-entropy"], -math.log(0.2))


def hinge_by_hand(scores, labels, margin=1.0):
    losses = []
    for s, y in zip(np.asarray(scores, dtype=np.float64), labels):
        losses.append(sum(max(0.0, s[j] - s[y] + margin) for j in range(len(s)) if j != y))
    return np.array(losses)


def test_multiclass_hinge(ex):
    r = ex.multiclass_hinge()
    expected = hinge_by_hand(ex.HINGE_SCORES, ex.HINGE_LABELS)
    close(r["per-sample"], expected)
    close(r["per-sample"], [2.9, 0.0, 12.9], 1e-12)  # the lecture's table
    close(r["mean"], expected.mean())
    close(r["mean"], 5.266666666666667, 1e-12)
    scores = ((0.5, -1.0, 2.0, 0.1), (3.0, 2.5, 2.9, -1.0))
    close(ex.multiclass_hinge(scores, (3, 0), margin=0.5)["per-sample"],
          hinge_by_hand(scores, (3, 0), 0.5))


def test_mean_and_std(ex):
    r = ex.mean_and_std()
    marks = np.array(ex.MARKS, dtype=np.float64)
    close(r["mean"], marks.mean())
    close(r["std (population)"], marks.std(ddof=0))
    close(r["std (sample)"], marks.std(ddof=1))
    close(ex.mean_and_std((1, 2, 3, 4))["std (sample)"], np.std([1, 2, 3, 4], ddof=1))


def test_main_prints_every_example(ex, capsys):
    ex.main([])
    out = capsys.readouterr().out
    for number in range(1, 9):
        assert f"\n{number}. " in out
    assert "nan" not in out.lower()
