"""The small hand-computed examples of a deep-learning course, done with nnx tensors and autograd.

    python examples/worked_examples.py

Each function below redoes one blackboard example with nnx (float64 tensors, so the printed
digits are the exact ones) and returns its numbers in a dict; ``main`` prints them with the
formula they come from. tests/test_worked_examples.py checks every value against an
independent numpy computation.

1. gradients of f(x, y, z) = (x + y) * z at x = -2, y = 5, z = -4;
2. the gradient of a sigmoid neuron 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))) at w = (2, -3, -3),
   x = (-1, -2);
3. a 2-input, 2-hidden, 1-output sigmoid network without biases: one forward pass, one step of
   backpropagation with the squared error 1/2 (t - o)^2 and learning rate 1, one more forward
   pass (inputs 0.35, 0.9; target 0.5);
4. the softmax of [1, 2, ..., 9];
5. the logit of 0.9, log(p / (1 - p));
6. the cross-entropy of a one-hot label against a predicted distribution;
7. the multiclass (Weston-Watkins) hinge loss of a 3-class score table;
8. the mean and standard deviation of a list of marks.
"""

from __future__ import annotations

import argparse
import textwrap

import numpy as np

import nnx
from nnx.nn import functional as F


def _np(t: nnx.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def _t(values, requires_grad: bool = False) -> nnx.Tensor:
    return nnx.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def product_gradients(x: float = -2.0, y: float = 5.0, z: float = -4.0) -> dict:
    """f = (x + y) * z; by the chain rule df/dx = df/dy = z and df/dz = x + y."""
    xs, ys, zs = (_t(v, requires_grad=True) for v in (x, y, z))
    q = xs + ys
    f = q * zs
    f.backward()
    return {"q": q.item(), "f": f.item(), "df/dx": xs.grad.item(), "df/dy": ys.grad.item(),
            "df/dz": zs.grad.item()}


def sigmoid_neuron(w=(2.0, -3.0, -3.0), x=(-1.0, -2.0)) -> dict:
    """f = sigmoid(w0 x0 + w1 x1 + w2); df/d(dot) = (1 - f) f, then times x (for w) or w (for x)."""
    ws, xs = _t(w, requires_grad=True), _t(x, requires_grad=True)
    dot = ws[0] * xs[0] + ws[1] * xs[1] + ws[2]
    f = 1 / (1 + (-dot).exp())
    f.backward()
    return {"dot": dot.item(), "f": f.item(), "df/dw": _np(ws.grad),
            "df/dx": _np(xs.grad)}


def _network_forward(x, w_hidden, w_out):
    hidden = F.sigmoid(w_hidden @ x)  # (2,): one row of w_hidden per hidden unit
    output = F.sigmoid(w_out @ hidden)  # (1,): w_out is one row, the output unit's weights
    return hidden, output


def backprop_step(x=(0.35, 0.9), w_hidden=((0.1, 0.8), (0.4, 0.6)), w_out=(0.3, 0.9),
                  target: float = 0.5, lr: float = 1.0) -> dict:
    """Forward pass, backpropagation of E = 1/2 (target - output)^2, one gradient step
    w -= lr * dE/dw on both layers, and the forward pass with the new weights.

    ``w_hidden[j]`` holds the weights from the inputs (x1, x2) into hidden unit j, ``w_out``
    those from the hidden units into the output."""
    xs = _t(x)
    wh = _t(w_hidden, requires_grad=True)
    wo = _t(np.reshape(w_out, (1, -1)), requires_grad=True)
    hidden, output = _network_forward(xs, wh, wo)
    error = (0.5 * (target - output) ** 2).sum()
    error.backward()
    with nnx.no_grad():
        new_wh = wh - lr * wh.grad
        new_wo = wo - lr * wo.grad
        new_hidden, new_output = _network_forward(xs, new_wh, new_wo)
    return {"hidden": _np(hidden), "output": output.item(), "error": error.item(),
            "dE/dw_hidden": _np(wh.grad), "dE/dw_out": _np(wo.grad)[0],
            "new w_hidden": _np(new_wh), "new w_out": _np(new_wo)[0],
            "new hidden": _np(new_hidden), "new output": new_output.item(),
            "new error": 0.5 * (target - new_output.item()) ** 2}


def softmax_1_to_9() -> dict:
    """softmax(z)_i = exp(z_i) / sum_j exp(z_j) for z = [1, ..., 9]."""
    p = F.softmax(_t(np.arange(1, 10)), dim=0)
    return {"softmax": _np(p), "sum": p.sum().item()}


def logit(p: float = 0.9) -> dict:
    """The inverse of the sigmoid: logit(p) = log(p / (1 - p)); sigmoid(logit(p)) = p."""
    ps = _t(p)
    z = (ps / (1 - ps)).log()
    return {"logit": z.item(), "sigmoid(logit)": F.sigmoid(z).item()}


def cross_entropy_one_hot(label: int = 1, predicted=(0.2, 0.7, 0.1)) -> dict:
    """H(t, p) = -sum_i t_i log p_i; for a one-hot t this is -log p[label]."""
    p = _t(predicted)
    t = _t(np.eye(len(predicted))[label])
    by_formula = -(t * p.log()).sum()
    # The same number through nnx's loss: log-probabilities into the negative log-likelihood.
    by_nll = F.nll_loss(p.log().unsqueeze(0), np.array([label]))
    return {"cross-entropy": by_formula.item(), "nll_loss": by_nll.item()}


# The score table of the classic example: rows are the images of a cat, a car and a frog; the
# columns the scores of the classes cat, car, frog; each image's correct class is its own.
HINGE_SCORES = ((3.2, 5.1, -1.7), (1.3, 4.9, 2.0), (2.2, 2.5, -3.1))
HINGE_LABELS = (0, 1, 2)


def multiclass_hinge(scores=HINGE_SCORES, labels=HINGE_LABELS, margin: float = 1.0) -> dict:
    """L_i = sum over j != y_i of max(0, s_j - s_{y_i} + margin); the loss is their mean."""
    s = _t(scores)
    y = np.asarray(labels, dtype=np.int64)
    per_sample = F.multiclass_hinge_loss(s, y, margin=margin, reduction="none")
    return {"per-sample": _np(per_sample),
            "mean": F.multiclass_hinge_loss(s, y, margin=margin).item()}


MARKS = (62, 75, 48, 91, 83, 70, 55, 68, 79, 88)


def mean_and_std(marks=MARKS) -> dict:
    """mean = sum(x) / n; population std = sqrt(sum((x - mean)^2) / n); the sample std divides
    by n - 1 instead (Bessel's correction)."""
    x = _t(marks)
    n = x.numel()
    mean = x.mean()
    squares = ((x - mean) ** 2).sum()
    return {"mean": mean.item(), "std (population)": (squares / n).sqrt().item(),
            "std (sample)": (squares / (n - 1)).sqrt().item()}


EXAMPLES = [
    ("1. f(x, y, z) = (x + y) * z at (-2, 5, -4)", product_gradients),
    ("2. sigmoid neuron 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))), w = (2, -3, -3), x = (-1, -2)",
     sigmoid_neuron),
    ("3. 2-2-1 sigmoid network: forward, backpropagation (E = 1/2 (t - o)^2, lr 1), forward",
     backprop_step),
    ("4. softmax([1, ..., 9])", softmax_1_to_9),
    ("5. logit(0.9) = log(0.9 / 0.1)", logit),
    ("6. cross-entropy of the one-hot label [0, 1, 0] against p = [0.2, 0.7, 0.1]",
     cross_entropy_one_hot),
    ("7. multiclass hinge loss, scores (rows: cat, car, frog images) "
     f"{[list(r) for r in HINGE_SCORES]}", multiclass_hinge),
    (f"8. mean and standard deviation of the marks {list(MARKS)}", mean_and_std),
]


def _format(value) -> str:
    if isinstance(value, np.ndarray):  # rows of a matrix line up under the first one
        text = np.array2string(value, precision=5, suppress_small=True, max_line_width=120)
        return text.replace("\n", "\n" + " " * 24)
    return f"{value:.5f}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.parse_args(argv)
    for title, example in EXAMPLES:
        formula = " ".join(example.__doc__.split("\n\n")[0].split())
        print(f"\n{title}\n" + textwrap.fill(formula, 100, initial_indent="   ",
                                                subsequent_indent="   "))
        for name, value in example().items():
            print(f"   {name:>18} = {_format(value)}")


if __name__ == "__main__":
    main()
