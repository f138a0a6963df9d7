"""Command line: ``python -m nnx info``, ``python -m nnx train mlp ...`` (or the ``nnx`` script)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import nnx
from nnx import cli_train


def _gemm_check(size: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = nnx.matmul(a, b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    err = float(np.max(np.abs(c - ref)) / np.max(np.abs(ref)))
    status = "ok" if err < 1e-5 else "MISMATCH"
    print(f"gemm check {size}x{size}x{size}: max relative error {err:.2e} vs float64 ({status})")
    if status != "ok":
        raise SystemExit(1)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        nnx.gemm(a, b, c)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"gemm speed {size}^3: {2 * size**3 / best / 1e9:.1f} GFLOP/s "
          f"(best of {repeats}, {nnx.get_num_threads()} threads)")


def cmd_info(args: argparse.Namespace) -> None:
    for key, value in nnx.info().items():
        if isinstance(value, list):
            value = " ".join(value)
        print(f"{key:>15}: {value}")
    if not args.no_check:
        _gemm_check(args.size, args.repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnx", description="nnx command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="print build and CPU information, run a quick GEMM check")
    p.add_argument("--no-check", action="store_true", help="skip the GEMM check and benchmark")
    p.add_argument("--size", type=int, default=1024, help="matrix size of the GEMM check")
    p.add_argument("--repeats", type=int, default=5, help="timed GEMM runs")
    p.set_defaults(func=cmd_info)
    cli_train.add_train_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
