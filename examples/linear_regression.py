"""Linear regression by gradient descent: batch vs mini-batch vs stochastic, vs least squares.

    python examples/linear_regression.py [--epochs 30]

Two synthetic problems with known weights: one feature (y = 3 x + 2 + noise) and five features.
Each is fitted three times with ``nnx.nn.Linear``, ``MSELoss`` and ``optim.SGD``, differing only
in the batch size: the whole data set per step (batch GD), 16 samples (mini-batch) and one sample
(stochastic GD). The full-data loss after each epoch is printed side by side, then the weights
are compared with the closed-form least-squares solution (``numpy.linalg.lstsq``), which is the
exact minimizer that gradient descent approaches.
"""

from __future__ import annotations

import argparse

import numpy as np

import nnx
from nnx import nn, optim
from nnx.data import DataLoader, TensorDataset

# name -> (batch size or None for the whole data set, learning rate). Smaller batches take more,
# noisier steps per epoch, so they get a smaller step size.
METHODS = {"batch": (None, 0.1), "mini-batch": (16, 0.05), "stochastic": (1, 0.005)}


def make_problem(n: int, true_w: np.ndarray, true_b: float, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(true_w)))
    y = x @ true_w + true_b + noise * rng.standard_normal(n)
    return x.astype(np.float32), y.astype(np.float32)[:, None]


def full_loss(model, x, y) -> float:
    with nnx.no_grad():
        return float(nn.functional.mse_loss(model(nnx.tensor(x)), nnx.tensor(y)).data)


def gradient_descent(x, y, batch_size, lr, epochs, seed) -> tuple[nn.Linear, list[float]]:
    nnx.manual_seed(seed)
    model = nn.Linear(x.shape[1], 1)
    opt = optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size or len(x), shuffle=True)
    curve = [full_loss(model, x, y)]
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        curve.append(full_loss(model, x, y))
    return model, curve


def least_squares(x, y) -> tuple[np.ndarray, float, float]:
    design = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y[:, 0].astype(np.float64), rcond=None)
    mse = float(np.mean((design @ coef - y[:, 0]) ** 2))
    return coef[:-1], float(coef[-1]), mse


def run(title: str, x, y, true_w, true_b, epochs: int, seed: int) -> None:
    print(f"\n== {title}: {len(x)} samples, {x.shape[1]} feature(s), true w = {true_w}, "
          f"b = {true_b}")
    fits = {name: gradient_descent(x, y, bs, lr, epochs, seed)
            for name, (bs, lr) in METHODS.items()}
    w_ls, b_ls, mse_ls = least_squares(x, y)
    header = "epoch " + "".join(f"{name:>14}" for name in fits)
    print("full-data MSE after each epoch (steps per epoch: "
          + ", ".join(f"{n} {-(-len(x) // (bs or len(x)))}" for n, (bs, _) in METHODS.items())
          + ")")
    print(header)
    shown = sorted({0, 1, 2, 3, 5, 10, 20, epochs} | set(range(0, epochs + 1, 50)))
    for e in (e for e in shown if e <= epochs):
        print(f"{e:5d} " + "".join(f"{fits[n][1][e]:14.6f}" for n in fits))
    print(f"least squares (closed form): MSE {mse_ls:.6f}  w = {np.round(w_ls, 4)}  "
          f"b = {b_ls:.4f}")
    for name, (model, curve) in fits.items():
        w = model.weight.data[0].astype(np.float64)
        b = float(model.bias.data[0])
        gap = max(np.max(np.abs(w - w_ls)), abs(b - b_ls))
        print(f"{name:>12}: MSE {curve[-1]:.6f}  w = {np.round(w, 4)}  b = {b:.4f}  "
              f"(max |difference| from least squares {gap:.1e})")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    w1 = np.array([3.0])
    x, y = make_problem(args.samples, w1, 2.0, 0.5, args.seed)
    run("one feature", x, y, w1, 2.0, args.epochs, args.seed)
    w5 = np.array([1.5, -2.0, 0.5, 0.0, 3.0])
    x, y = make_problem(args.samples, w5, -1.0, 0.3, args.seed + 1)
    run("five features", x, y, w5, -1.0, args.epochs, args.seed)


if __name__ == "__main__":
    main()
