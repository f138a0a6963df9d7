"""XOR: a single perceptron cannot learn it, a 2-2-1 network can.

    python examples/xor.py [--epochs 1000] [--seed 0]

1. Rosenblatt's perceptron (``nnx.classic.Perceptron``) learns AND and OR, which are linearly
   separable, in a few epochs. On XOR its error count never reaches 0: the weights return to a
   state they had at the start of an earlier epoch, and since each epoch is the same
   deterministic update, they cycle forever. No weight vector can do better, because the score
   s(x) = w1 x1 + w2 x2 + b of any linear unit satisfies s(0,1) + s(1,0) = s(0,0) + s(1,1):
   the two points of class 1 cannot both score above 0 while the two of class 0 both score
   below.
2. A network with 2 inputs, 2 sigmoid hidden units and 1 output (``nnx.nn``; 9 parameters),
   trained on binary cross-entropy by gradient descent with momentum, reaches 100% on XOR: the
   hidden layer maps the four points to places where one line separates the classes. A network
   this small can also settle in a local minimum (one XOR point stays wrong); the script then
   starts again from new random weights, and says so.
"""

from __future__ import annotations

import argparse

import numpy as np

import nnx
from nnx import classic, nn, optim

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
TARGETS = {"AND": np.array([0, 0, 0, 1]), "OR": np.array([0, 1, 1, 1]),
           "XOR": np.array([0, 1, 1, 0])}


def perceptron_demo(max_epochs: int = 100) -> dict[str, classic.Perceptron]:
    fitted = {}
    for name, y in TARGETS.items():
        p = classic.Perceptron(lr=1.0, max_epochs=max_epochs).fit(X, y)
        fitted[name] = p
        if p.converged_:
            outcome = f"converged after {p.n_epochs_} epochs"
        elif p.cycled_:
            first = next(i for i, (w, b) in enumerate(p.weights_history_)
                         if np.array_equal(w, p.coef_) and b == p.intercept_)
            outcome = (f"no convergence: the weights at the start of epoch {p.n_epochs_ + 1} "
                       f"equal those of epoch {first + 1}, so they cycle forever")
        else:
            outcome = f"no convergence in {max_epochs} epochs"
        print(f"{name:>3}: mistakes per epoch {p.errors_}; {outcome}; w = {p.coef_}, "
              f"b = {p.intercept_:g}; accuracy {p.score(X, y):.2f}")
    return fitted


def separability_check(rng: np.random.Generator, trials: int = 100_000) -> float:
    """The best accuracy of `trials` random linear units on XOR (it is at most 3/4)."""
    w = rng.standard_normal((trials, 2))
    b = rng.standard_normal((trials, 1))
    scores = w @ X.T.astype(np.float64) + b  # (trials, 4)
    # s(0,1) + s(1,0) - s(0,0) - s(1,1) = 0 for every linear unit, up to rounding.
    identity = np.abs(scores[:, 1] + scores[:, 2] - scores[:, 0] - scores[:, 3]).max()
    accuracy = ((scores >= 0) == TARGETS["XOR"].astype(bool)).mean(axis=1)
    print(f"{trials} random linear units on XOR: best accuracy {accuracy.max():.2f}; "
          f"max |s(0,1) + s(1,0) - s(0,0) - s(1,1)| = {identity:.1e}")
    return float(accuracy.max())


def make_network() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1))


def train_network(seed: int, epochs: int = 1000, lr: float = 0.5):
    """(model, accuracy, final loss) of one 2-2-1 network trained on the 4 XOR points."""
    nnx.manual_seed(seed)
    model = make_network()
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.BCEWithLogitsLoss()
    x, y = nnx.tensor(X), nnx.tensor(TARGETS["XOR"].astype(np.float32)[:, None])
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return model, accuracy(model), float(loss.item())


def accuracy(model) -> float:
    with nnx.no_grad():
        predicted = model(nnx.tensor(X)).numpy()[:, 0] > 0
    return float(np.mean(predicted == TARGETS["XOR"].astype(bool)))


def solve_xor(seed: int = 0, epochs: int = 1000, attempts: int = 10, verbose: bool = True):
    """Trains from seeds seed, seed + 1, ... until a network reaches 100%; returns
    (model, seeds tried). Raises RuntimeError if none of `attempts` does."""
    for i in range(attempts):
        model, acc, loss = train_network(seed + i, epochs)
        if verbose:
            print(f"seed {seed + i}: loss {loss:.4f}, accuracy {acc:.2f}"
                  + ("" if acc == 1 else "  (a local minimum: start again)"))
        if acc == 1:
            return model, i + 1
    raise RuntimeError(f"xor: no 2-2-1 network reached 100% in {attempts} attempts")


def _round(t) -> list:
    return np.round(t.data.astype(np.float64), 2).tolist()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    print("== 1. one perceptron, Rosenblatt's rule w += lr * (y - y_hat) * x")
    perceptron_demo()
    separability_check(np.random.default_rng(args.seed))

    print("\n== 2. a 2-2-1 sigmoid network, binary cross-entropy, SGD with momentum, "
          f"{args.epochs} full-batch steps")
    model, _ = solve_xor(args.seed, args.epochs)
    linear1, _, linear2 = model
    with nnx.no_grad():
        hidden = model[1](model[0](nnx.tensor(X))).numpy()
        logits = model(nnx.tensor(X)).numpy()[:, 0]
    print(" x1 x2 | hidden h1, h2  | output sigmoid | target")
    for xi, h, z, t in zip(X.astype(int), hidden, logits, TARGETS["XOR"]):
        print(f"  {xi[0]}  {xi[1]} | {h[0]:.3f}, {h[1]:.3f}   | {1 / (1 + np.exp(-z)):.3f}"
              f"          | {t}")
    for name, layer in (("hidden", linear1), ("output", linear2)):
        print(f"{name} layer: weights {_round(layer.weight)}, biases {_round(layer.bias)}")
    print(f"accuracy {accuracy(model):.2f}: in the hidden space (h1, h2) the line "
          "w . h + b = 0 of the output unit separates the classes")


if __name__ == "__main__":
    main()
