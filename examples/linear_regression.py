"""Linear regression by gradient descent: batch vs mini-batch vs stochastic, vs least squares.

    python examples/linear_regression.py [--epochs 30]
    python examples/linear_regression.py --series-only

Two synthetic problems with known weights: one feature (y = 3 x + 2 + noise) and five features.
Each is fitted three times with ``nnx.nn.Linear``, ``MSELoss`` and ``optim.SGD``, differing only
in the batch size: the whole data set per step (batch GD), 16 samples (mini-batch) and one sample
(stochastic GD). The full-data loss after each epoch is printed side by side, then the weights
are compared with the closed-form least-squares solution (``numpy.linalg.lstsq``), which is the
exact minimizer that gradient descent approaches.

The third part predicts a time series from its own past (an autoregressive model). The series
is a noisy oscillation, x_t = 1.6 x_{t-1} - 0.8 x_{t-2} + noise, so its next value depends on
the two previous ones. ``nnx.classic.LinearRegression`` is fitted with 1, 2, 3, ..., 30 previous
values as features, in closed form and by batch gradient descent, on the first part of the
series; the rest is held out (split in time, so that the model never sees the future it is
scored on). One past value is not enough (both losses high); with two the held-out loss drops
to about the noise level; with many more the training loss keeps falling while the held-out
loss rises again: the extra weights fit the noise of the training part (overfitting).
"""

from __future__ import annotations

import argparse

import numpy as np

import nnx
from nnx import classic, nn, optim
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


def make_series(n: int, seed: int, burn_in: int = 100) -> np.ndarray:
    """n steps of x_t = 1.6 x_{t-1} - 0.8 x_{t-2} + e_t (e_t standard normal), after a burn-in
    that forgets the zero start."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n + burn_in)
    x = np.zeros(n + burn_in)
    for t in range(2, n + burn_in):
        x[t] = 1.6 * x[t - 1] - 0.8 * x[t - 2] + noise[t]
    return x[burn_in:]


def lagged(series: np.ndarray, lags: int, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (x_{t-1}, ..., x_{t-lags}) and target x_t for t = first, ..., len - 1."""
    x = np.stack([series[first - j:len(series) - j] for j in range(1, lags + 1)], axis=1)
    return x, series[first:]


def time_series(length: int, train_steps: int, max_lags: int, epochs: int, seed: int) -> dict:
    """Training and held-out MSE of autoregressive models with 1..max_lags past values."""
    series = make_series(length, seed)
    # Standardized with the training part's statistics only; every model predicts the same
    # time steps (from max_lags on), so their losses are comparable.
    known = series[:max_lags + train_steps]
    series = (series - known.mean()) / known.std()
    print(f"\n== time series x_t = 1.6 x_(t-1) - 0.8 x_(t-2) + noise, {length} steps: predicting "
          f"the first {train_steps} steps is the training set, the other "
          f"{length - max_lags - train_steps} are held out")
    print(f"{'past values':>11} {'train MSE':>10} {'held-out':>10}   "
          f"{'GD train':>10} {'GD held-out':>11}   (closed form, then {epochs} epochs of batch GD)")
    results = {}
    for lags in sorted({1, 2, 3, 5, 10, 20, max_lags} & set(range(1, max_lags + 1))):
        x, y = lagged(series, lags, max_lags)
        train, test = slice(0, train_steps), slice(train_steps, None)
        exact = classic.LinearRegression().fit(x[train], y[train])
        gd = classic.LinearRegression("gd", lr=0.05, epochs=epochs).fit(x[train], y[train])
        row = (exact.loss(x[train], y[train]), exact.loss(x[test], y[test]),
               gd.loss(x[train], y[train]), gd.loss(x[test], y[test]))
        results[lags] = row
        note = f"  w = {np.round(exact.coef_, 3)}" if lags <= 3 else ""
        print(f"{lags:11d} {row[0]:10.4f} {row[1]:10.4f}   {row[2]:10.4f} {row[3]:11.4f}{note}")
    best = min(results, key=lambda k: results[k][1])
    print(f"lowest held-out loss with {best} past value(s); the noise alone gives "
          f"{1 / known.std() ** 2:.4f} (its variance in standardized units).")
    print("Gradient descent approaches the closed form, more slowly with many lags: they are "
          "strongly correlated, so the loss surface is a long narrow valley.")
    return results


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--series-length", type=int, default=400)
    p.add_argument("--train-steps", type=int, default=100,
                   help="time steps of the series used for training (the rest is held out)")
    p.add_argument("--max-lags", type=int, default=30)
    p.add_argument("--series-epochs", type=int, default=200)
    p.add_argument("--series-only", action="store_true", help="run only the time-series part")
    args = p.parse_args(argv)
    if args.series_length <= args.max_lags + args.train_steps:
        p.error("--series-length must exceed --max-lags + --train-steps")
    if not args.series_only:
        synthetic(args)
    time_series(args.series_length, args.train_steps, args.max_lags, args.series_epochs,
                args.seed)


def synthetic(args) -> None:
    w1 = np.array([3.0])
    x, y = make_problem(args.samples, w1, 2.0, 0.5, args.seed)
    run("one feature", x, y, w1, 2.0, args.epochs, args.seed)
    w5 = np.array([1.5, -2.0, 0.5, 0.0, 3.0])
    x, y = make_problem(args.samples, w5, -1.0, 0.3, args.seed + 1)
    run("five features", x, y, w5, -1.0, args.epochs, args.seed)


if __name__ == "__main__":
    main()
