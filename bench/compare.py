"""nnx vs numpy vs torch, side by side in one process.

    python bench/compare.py gemm [--threads 1 2] [--repeats 15] [--quick]

For every shape and thread count it times each library on the same inputs, interleaving the
libraries round by round so that a disturbance on this shared machine hits all of them alike,
and prints the median time, GFLOP/s, % of the FMA peak measured in the same run, and the ratio
of nnx's speed to each peer's (> 1 means nnx is faster). torch is optional.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

import nnx
from nnx import _core, _kernels, _memory

SQUARE = [256, 512, 1024, 2048]
# (M, K, N) of real layers: an MLP, a wide linear layer, LeNet-5's conv2 and conv1 as im2col
# GEMMs over a batch of 128, a transformer-sized projection, and a 10-class classifier head.
DL_SHAPES = [(128, 784, 256), (64, 512, 2048), (16, 150, 12800), (6, 25, 100352),
             (256, 4096, 1024), (128, 256, 10)]


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_per_thread_count(args: argparse.Namespace) -> None:
    """Runs this script once per thread count in a fresh process.

    numpy's OpenBLAS fixes its thread pool when it loads, from OMP_NUM_THREADS or
    OPENBLAS_NUM_THREADS; a fresh process with those set is the only dependable way to hold every
    library to the same number of threads.
    """
    for n in args.threads:
        env = dict(os.environ, NNX_COMPARE_CHILD="1", **{var: str(n) for var in THREAD_VARS})
        child = [args.what, "--threads", str(n), "--repeats", str(args.repeats),
                 "--min-time", str(args.min_time)]
        child += ["--quick"] * args.quick + ["--no-torch"] * args.no_torch
        subprocess.run([sys.executable, __file__, *child], env=env, check=True)


def timed_rounds(fns: dict[str, Callable[[], None]], repeats: int, min_time: float,
                 settle: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each function, interleaved round by round.

    `settle` seconds of sleep precede each round: with several threads, the library that ran last
    leaves worker threads busy-waiting for more work (OpenBLAS for up to ~0.1 s), and they would
    steal the cores from the next library's round.
    """
    inner = {}
    for name, fn in fns.items():  # warm up, and pick a call count per round of >= min_time
        fn()
        t0 = time.perf_counter()
        fn()
        dt = max(time.perf_counter() - t0, 1e-7)
        inner[name] = max(1, int(min_time / dt))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            n = inner[name]
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def use_threads(threads: int, torch) -> None:
    """Holds nnx and torch (when present) to `threads` threads."""
    nnx.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def print_header(cols: list[str]) -> None:
    """The header and rule of a markdown table."""
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))


def bench_gemm(args, torch) -> None:
    rng = np.random.default_rng(0)
    shapes = [(s, s, s) for s in SQUARE] + DL_SHAPES
    if args.quick:
        shapes = [(256, 256, 256), (128, 256, 10)]
    for threads in args.threads:
        use_threads(threads, torch)
        peak = _core.measure_fma_peak_gflops(threads, 0.3)
        print(f"\n## sgemm, {threads} thread(s); measured FMA peak {peak:.0f} GFLOP/s "
              f"({_core.active_isa()})\n")
        cols = ["M", "K", "N", "nnx GF/s", "% peak", "numpy GF/s", "nnx/numpy"]
        if torch is not None:
            cols += ["torch GF/s", "nnx/torch"]
        print_header(cols)
        for m, k, n in shapes:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            c_nnx = np.empty((m, n), np.float32)
            c_np = np.empty((m, n), np.float32)
            fns = {"nnx": lambda: nnx.gemm(a, b, c_nnx),
                   "numpy": lambda: np.matmul(a, b, out=c_np)}
            if torch is not None:
                ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                tc = torch.empty((m, n), dtype=torch.float32)
                fns["torch"] = lambda: torch.matmul(ta, tb, out=tc)
            t = timed_rounds(fns, args.repeats, args.min_time, settle=0.15 if threads > 1 else 0.0)
            err = np.max(np.abs(c_nnx - c_np)) / max(1e-30, float(np.max(np.abs(c_np))))
            if err > 1e-4:
                sys.exit(f"nnx and numpy disagree on {(m, k, n)}: relative error {err:.2e}")
            gf = {name: 2.0 * m * n * k / sec / 1e9 for name, sec in t.items()}
            row = [m, k, n, f"{gf['nnx']:.1f}", f"{100 * gf['nnx'] / peak:.0f}%",
                   f"{gf['numpy']:.1f}", f"{t['numpy'] / t['nnx']:.2f}x"]
            if torch is not None:
                row += [f"{gf['torch']:.1f}", f"{t['torch'] / t['nnx']:.2f}x"]
            print("| " + " | ".join(str(x) for x in row) + " |", flush=True)


def bench_adam(args, torch) -> None:
    """One fused Adam step on a flat float32 parameter: nnx's C++ kernel vs torch's fused Adam."""
    sizes = [1_000_000, 10_000_000] if not args.quick else [100_000]
    for threads in args.threads:
        use_threads(threads, torch)
        print(f"\n## Adam step (lr 1e-3, weight_decay 0), {threads} thread(s)\n")
        cols = ["params", "nnx ms", "nnx GB/s"] + (["torch fused ms", "nnx/torch"] if torch else [])
        print_header(cols)
        rng = np.random.default_rng(0)
        for n in sizes:
            # Each library's own allocation: nnx places parameters, gradients and optimizer state
            # on 64-byte boundaries (nnx._memory), torch's allocator does the same.
            p, g = _memory.empty(n), _memory.empty(n)
            p[:] = rng.standard_normal(n, dtype=np.float32)
            g[:] = rng.standard_normal(n, dtype=np.float32)
            m, v = _memory.zeros(n), _memory.zeros(n)
            step = [0]

            def nnx_step():
                step[0] += 1
                _kernels.adam_step(p, g, m, v, step=step[0], lr=1e-3)

            fns = {"nnx": nnx_step}
            if torch is not None:
                tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
                tp.grad = torch.from_numpy(g.copy())
                opt = torch.optim.Adam([tp], lr=1e-3, fused=True)
                fns["torch"] = opt.step
            t = timed_rounds(fns, args.repeats, args.min_time, settle=0.15 if threads > 1 else 0.0)
            # Bytes moved: read param, grad, m, v; write param, m, v.
            row = [f"{n:,}", f"{t['nnx'] * 1e3:.3f}", f"{7 * 4 * n / t['nnx'] / 1e9:.1f}"]
            if torch is not None:
                row += [f"{t['torch'] * 1e3:.3f}", f"{t['torch'] / t['nnx']:.2f}x"]
            print("| " + " | ".join(row) + " |", flush=True)


def mnist_like_arrays():
    """MNIST training images (standardised, flattened) and labels when $NNX_DATA_DIR has them,
    else random arrays of the same shape: the speed of an epoch does not depend on the values."""
    try:
        from nnx.data import MNIST
        ds = MNIST(train=True)
        x = ds.data.reshape(len(ds), -1).astype(np.float32) / 255
        x = (x - x.mean()) / x.std()
        return np.ascontiguousarray(x), ds.targets.astype(np.int64), "MNIST"
    except (FileNotFoundError, OSError):
        rng = np.random.default_rng(0)
        return (rng.standard_normal((60000, 784), dtype=np.float32),
                rng.integers(0, 10, 60000), "random data of MNIST's shape")


def compare_training_epochs(args, torch, title, x, y, nnx_model, torch_model, batch=64) -> None:
    """One training epoch (Adam lr 1e-3, cross-entropy, batches of `batch` rows) of the same model
    in nnx and torch. Both get the same pre-shuffled arrays in slices, so the data pipeline is the
    same (and negligible) for both: the figure is the framework's step time."""
    from nnx import nn, optim

    n = len(x)
    for threads in args.threads:
        use_threads(threads, torch)
        nnx.manual_seed(0)
        model = nnx_model()
        opt = optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def nnx_epoch():
            for i in range(0, n, batch):
                loss = loss_fn(model(nnx.from_numpy(x[i:i + batch])),
                               nnx.from_numpy(y[i:i + batch]))
                opt.zero_grad()
                loss.backward()
                opt.step()

        fns = {"nnx": nnx_epoch}
        if torch is not None:
            torch.manual_seed(0)
            tmodel = torch_model(torch.nn)
            topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
            tloss = torch.nn.CrossEntropyLoss()
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)

            def torch_epoch():
                for i in range(0, n, batch):
                    loss = tloss(tmodel(tx[i:i + batch]), ty[i:i + batch])
                    topt.zero_grad()
                    loss.backward()
                    topt.step()

            fns["torch"] = torch_epoch
        t = timed_rounds(fns, args.repeats, 0.0, settle=0.15 if threads > 1 else 0.0)
        print(f"\n## {title} epoch ({n} images, batch {batch}, Adam), {threads} thread(s)\n")
        cols = ["nnx s/epoch", "images/s"] + (["torch s/epoch", "nnx/torch time"] if torch else [])
        print_header(cols)
        row = [f"{t['nnx']:.3f}", f"{n / t['nnx']:,.0f}"]
        if torch is not None:
            row += [f"{t['torch']:.3f}", f"{t['nnx'] / t['torch']:.2f}"]
        print("| " + " | ".join(row) + " |", flush=True)


def shuffled_mnist(args, image_shape):
    x, y, source = mnist_like_arrays()
    n = 3200 if args.quick else len(x)
    perm = np.random.default_rng(1).permutation(len(x))[:n]
    print(f"# data: {source}")
    return np.ascontiguousarray(x[perm].reshape(n, *image_shape)), np.ascontiguousarray(y[perm])


def bench_mlp(args, torch) -> None:
    """A 784-256-10 ReLU MLP."""
    from nnx import nn

    x, y = shuffled_mnist(args, (784,))
    compare_training_epochs(
        args, torch, "MLP 784-256-10", x, y,
        lambda: nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)),
        lambda T: T.Sequential(T.Linear(784, 256), T.ReLU(), T.Linear(256, 10)))


def bench_lenet5(args, torch) -> None:
    """LeNet-5 with ReLU and max pooling, as nnx.models.LeNet5 builds it."""
    from nnx import models

    x, y = shuffled_mnist(args, (1, 28, 28))
    compare_training_epochs(
        args, torch, "LeNet-5", x, y, models.LeNet5,
        lambda T: T.Sequential(T.Conv2d(1, 6, 5, padding=2), T.ReLU(), T.MaxPool2d(2),
                               T.Conv2d(6, 16, 5), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
                               T.Linear(400, 120), T.ReLU(), T.Linear(120, 84), T.ReLU(),
                               T.Linear(84, 10)))


# (N, C, H, W, K, R, padding) of issue 4's targets: LeNet-5's two layers and three ResNet layers.
CONV_SHAPES = [(64, 1, 28, 28, 6, 5, 0), (64, 6, 14, 14, 16, 5, 0), (64, 3, 32, 32, 32, 3, 1),
               (64, 32, 32, 32, 64, 3, 1), (32, 64, 56, 56, 64, 3, 1)]


def bench_conv(args, torch) -> None:
    """conv2d forward + backward (input, weight and bias gradients), nnx kernels vs torch."""
    shapes = CONV_SHAPES[:2] if args.quick else CONV_SHAPES
    rng = np.random.default_rng(0)
    for threads in args.threads:
        use_threads(threads, torch)
        print(f"\n## conv2d forward + backward, stride 1, {threads} thread(s)\n")
        cols = (["N, C, H, W, K, R, pad", "nnx ms", "GFLOP/s"]
                + (["torch ms", "nnx/torch"] if torch else []))
        print_header(cols)
        for n, c, h, w, k, r, pad in shapes:
            x = rng.standard_normal((n, c, h, w), dtype=np.float32)
            wt = rng.standard_normal((k, c, r, r), dtype=np.float32)
            b = rng.standard_normal(k, dtype=np.float32)
            geo = ((1, 1), (pad, pad), (1, 1))
            y = _kernels.conv2d_forward(x, wt, b, *geo)
            gy = rng.standard_normal(y.shape, dtype=np.float32)

            def nnx_step():
                _kernels.conv2d_forward(x, wt, b, *geo)
                _kernels.conv2d_backward(gy, x, wt, *geo)

            fns = {"nnx": nnx_step}
            if torch is not None:
                tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, wt, b))
                tgy = torch.from_numpy(gy)

                def torch_step():
                    torch.nn.functional.conv2d(tx, tw, tb, 1, pad).backward(tgy)
                    tx.grad = tw.grad = tb.grad = None

                fns["torch"] = torch_step
            t = timed_rounds(fns, args.repeats, args.min_time, settle=0.15 if threads > 1 else 0.0)
            flops = 3 * 2 * n * k * c * r * r * y.shape[2] * y.shape[3]
            row = [f"{n}, {c}, {h}, {w}, {k}, {r}, {pad}", f"{t['nnx'] * 1e3:.2f}",
                   f"{flops / t['nnx'] / 1e9:.0f}"]
            if torch is not None:
                row += [f"{t['torch'] * 1e3:.2f}", f"{t['torch'] / t['nnx']:.2f}x"]
            print("| " + " | ".join(row) + " |", flush=True)


def bench_maxpool(args, torch) -> None:
    """max_pool2d 2x2 stride 2, forward + backward, on (64, 32, 32, 32)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16 if args.quick else 64, 32, 32, 32), dtype=np.float32)
    for threads in args.threads:
        use_threads(threads, torch)
        y, idx = _kernels.max_pool2d_forward(x, (2, 2), (2, 2))
        gy = rng.standard_normal(y.shape, dtype=np.float32)

        def nnx_step():
            _, i = _kernels.max_pool2d_forward(x, (2, 2), (2, 2))
            _kernels.max_pool2d_backward(gy, i, x.shape)

        fns = {"nnx": nnx_step}
        if torch is not None:
            tx, tgy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(gy)

            def torch_step():
                torch.nn.functional.max_pool2d(tx, 2, 2).backward(tgy)
                tx.grad = None

            fns["torch"] = torch_step
        t = timed_rounds(fns, args.repeats, args.min_time, settle=0.15 if threads > 1 else 0.0)
        print(f"\n## max_pool2d 2x2/2 forward + backward on {x.shape}, {threads} thread(s)\n")
        print("| nnx ms | " + ("torch ms | nnx/torch |" if torch else ""))
        print("|---|" + ("---|---|" if torch else ""))
        print(f"| {t['nnx'] * 1e3:.3f} | "
              + (f"{t['torch'] * 1e3:.3f} | {t['torch'] / t['nnx']:.2f}x |" if torch else ""),
              flush=True)


# (I, H, T, B) of the LSTM layer benchmark: a mid-sized layer, a wide one, and the char-LSTM's
# vocabulary-sized input.
LSTM_SHAPES = [(128, 256, 64, 32), (256, 512, 32, 64), (65, 128, 100, 32)]


def bench_lstm(args, torch) -> None:
    """One LSTM layer, forward + backward (input, weight, bias and initial-state gradients) over
    a whole sequence: nnx's kernels vs torch.nn.LSTM with the same weights."""
    shapes = [(32, 64, 16, 8), (65, 128, 20, 32)] if args.quick else LSTM_SHAPES
    rng = np.random.default_rng(0)
    for threads in args.threads:
        use_threads(threads, torch)
        print(f"\n## LSTM layer forward + backward, {threads} thread(s)\n")
        cols = (["I, H, T, B", "nnx ms", "GFLOP/s"]
                + (["torch ms", "nnx/torch", "max |diff|"] if torch else []))
        print_header(cols)
        for i, h, t_len, b in shapes:
            s = 1 / np.sqrt(h)
            x = rng.standard_normal((t_len, b, i), dtype=np.float32)
            w_ih, w_hh = (rng.uniform(-s, s, (4 * h, n)).astype(np.float32) for n in (i, h))
            b_ih, b_hh = (rng.uniform(-s, s, 4 * h).astype(np.float32) for _ in range(2))
            h0, c0 = (rng.standard_normal((b, h), dtype=np.float32) for _ in range(2))
            gy = rng.standard_normal((t_len, b, h), dtype=np.float32)
            out = {}

            def nnx_step():
                y, h_n, c_n, saved = _kernels.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
                out["nnx"] = y
                _kernels.lstm_backward(gy, None, None, x, w_ih, w_hh, saved)

            fns = {"nnx": nnx_step}
            if torch is not None:
                lstm = torch.nn.LSTM(i, h)
                with torch.no_grad():
                    for name, v in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh),
                                    ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
                        getattr(lstm, name).copy_(torch.from_numpy(v))
                tx, th0, tc0 = (torch.from_numpy(a).requires_grad_()
                                for a in (x, h0[None], c0[None]))
                tgy = torch.from_numpy(gy)

                def torch_step():
                    y, _ = lstm(tx, (th0, tc0))
                    out["torch"] = y
                    y.backward(tgy)
                    for p in (tx, th0, tc0, *lstm.parameters()):
                        p.grad = None

                fns["torch"] = torch_step
            t = timed_rounds(fns, args.repeats, args.min_time, settle=0.15 if threads > 1 else 0.0)
            # forward 2 (I + H) 4H per row and step; backward twice that
            flops = 3 * 2 * t_len * b * 4 * h * (i + h)
            row = [f"{i}, {h}, {t_len}, {b}", f"{t['nnx'] * 1e3:.2f}",
                   f"{flops / t['nnx'] / 1e9:.0f}"]
            if torch is not None:
                diff = float(np.max(np.abs(out["nnx"] - out["torch"].detach().numpy())))
                if diff > 1e-4:
                    sys.exit(f"nnx and torch disagree on LSTM {(i, h, t_len, b)}: {diff:.2e}")
                row += [f"{t['torch'] * 1e3:.2f}", f"{t['torch'] / t['nnx']:.2f}x", f"{diff:.1e}"]
            print("| " + " | ".join(row) + " |", flush=True)


def bench_char_lstm(args, torch) -> None:
    """One training iteration of the character-level LSTM language model (embedding 64, LSTM 256,
    linear to the vocabulary, cross-entropy, backward, gradient clipping to norm 5, Adam 2e-3)
    on (64, 32) windows of random character ids, nnx vs the same model in torch."""
    from nnx import nn, optim
    from nnx.char_lm import CharLSTM
    from nnx.nn import functional as F
    from nnx.tensor import Tensor

    vocab, t_len, batch = 65, (16 if args.quick else 64), 32
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, (t_len + 1, batch))
    x, y = ids[:-1], ids[1:]
    for threads in args.threads:
        use_threads(threads, torch)
        model = CharLSTM(vocab)
        params = list(model.parameters())
        opt = optim.Adam(params, lr=2e-3)

        def nnx_step():
            logits, _ = model(Tensor(x))
            loss = F.cross_entropy(logits.reshape(-1, vocab), Tensor(y.reshape(-1)))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()

        fns = {"nnx": nnx_step}
        if torch is not None:
            class TorchCharLSTM(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embedding = torch.nn.Embedding(vocab, 64)
                    self.lstm = torch.nn.LSTM(64, 256)
                    self.fc = torch.nn.Linear(256, vocab)

                def forward(self, ids):
                    return self.fc(self.lstm(self.embedding(ids))[0])

            tmodel = TorchCharLSTM()
            topt = torch.optim.Adam(tmodel.parameters(), lr=2e-3)
            tx, ty = torch.from_numpy(x), torch.from_numpy(y.reshape(-1))

            def torch_step():
                loss = torch.nn.functional.cross_entropy(tmodel(tx).reshape(-1, vocab), ty)
                topt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 5.0)
                topt.step()

            fns["torch"] = torch_step
        t = timed_rounds(fns, args.repeats, args.min_time, settle=0.15 if threads > 1 else 0.0)
        print(f"\n## char-LSTM training iteration (vocab {vocab}, emb 64, LSTM 256, T {t_len}, "
              f"B {batch}), {threads} thread(s)\n")
        print("| nnx ms | " + ("torch ms | nnx time / torch time |" if torch else ""))
        print("|---|" + ("---|---|" if torch else ""))
        print(f"| {t['nnx'] * 1e3:.2f} | "
              + (f"{t['torch'] * 1e3:.2f} | {t['nnx'] / t['torch']:.2f} |" if torch else ""),
              flush=True)


def numpy_knn(q, r, k, metric, block_bytes=64 << 20):
    """The same search in numpy: distance blocks of whole query rows (L2 by the `a @ b.T` identity,
    L1 by a blocked broadcast), then argpartition and a sort of the k smallest."""
    out = []
    rn = np.einsum("ij,ij->i", r, r) if metric == "l2" else None
    rows = max(1, block_bytes // (4 * len(r) * (1 if metric == "l2" else q.shape[1])))
    for q0 in range(0, len(q), rows):
        qb = q[q0:q0 + rows]
        if metric == "l2":
            d = np.einsum("ij,ij->i", qb, qb)[:, None] + rn[None, :] - 2 * (qb @ r.T)
        else:
            d = np.abs(qb[:, None, :] - r[None, :, :]).sum(axis=2)
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1, kind="stable")
        out.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(out)


def bench_knn(args, torch) -> None:
    """k-nearest-neighbour search (k = 5) over 784-dim rows: nnx's blocked kernel vs numpy."""
    del torch  # numpy is the peer here
    rng = np.random.default_rng(0)
    # (queries, references): L2 at the full Fashion-MNIST test x train size; L1 smaller, since
    # numpy's broadcast needs minutes for the full size.
    cases = {"l2": (10000, 60000), "l1": (200, 10000)}
    if args.quick:
        cases = {"l2": (500, 4000), "l1": (50, 2000)}
    for threads in args.threads:
        nnx.set_num_threads(threads)
        print(f"\n## kNN search, k = 5, dim 784, {threads} thread(s)\n")
        print("| metric | queries | references | nnx s | numpy s | nnx/numpy |")
        print("|---|---|---|---|---|---|")
        for metric, (nq, nr) in cases.items():
            q = rng.random((nq, 784), dtype=np.float32)
            r = rng.random((nr, 784), dtype=np.float32)
            got, _ = _kernels.knn_search(q, r, 5, metric)
            want = numpy_knn(q, r, 5, metric)
            if (got != want).mean() > 0.01:  # rounding may reorder near-ties, nothing more
                sys.exit(f"nnx and numpy disagree on the {metric} neighbours")
            t = timed_rounds({"nnx": lambda: _kernels.knn_search(q, r, 5, metric),
                              "numpy": lambda: numpy_knn(q, r, 5, metric)},
                             min(args.repeats, 5), args.min_time,
                             settle=0.15 if threads > 1 else 0.0)
            print(f"| {metric} | {nq} | {nr} | {t['nnx']:.3f} | {t['numpy']:.3f} | "
                  f"{t['numpy'] / t['nnx']:.2f}x |", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["gemm", "adam", "mlp", "lenet5", "conv", "maxpool", "knn",
                                 "lstm", "char-lstm"],
                        help="what to compare")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per library (median)")
    parser.add_argument("--min-time", type=float, default=0.02, help="seconds per timed round")
    parser.add_argument("--quick", action="store_true", help="two small shapes (a smoke test)")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out even if installed")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("NNX_COMPARE_CHILD") != "1":
        print(f"# command: python bench/compare.py {' '.join(argv)}", flush=True)
        run_per_thread_count(args)
        return
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch not installed: comparing with numpy only")
    info = nnx.info()
    print(f"# bench/compare.py {args.what} — {time.strftime('%Y-%m-%d %H:%M')}, {info['cpu']}, "
          f"nnx {info['version']} ({info['isa']}), numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else "")
          + f", Python {platform.python_version()}")
    print(f"# threads: {args.threads[0]} for nnx, numpy and torch "
          f"({', '.join(f'{v}={os.environ.get(v)}' for v in THREAD_VARS)})")
    {"gemm": bench_gemm, "adam": bench_adam, "mlp": bench_mlp, "lenet5": bench_lenet5,
     "conv": bench_conv, "maxpool": bench_maxpool, "knn": bench_knn,
     "lstm": bench_lstm, "char-lstm": bench_char_lstm}[args.what](args, torch)


if __name__ == "__main__":
    main()
