"""Kernels called from several Python threads at once give the results of serial calls.

Every binding releases the GIL while its kernel runs, so threads really run kernels in
parallel; dispatch tables are read-only after start-up and each thread has its own workspace.
These tests run many different calls (different shapes, so workspaces grow and shrink) from 4
threads in shuffled orders and require results bitwise equal to serial calls, also while the
thread count changes underneath (nnx's results do not depend on it).
"""

import concurrent.futures
import random
import sys
import threading
import time

import numpy as np
import pytest

import nnx
import nnx.nn.functional as F
from nnx import _core, models, optim

THREADS = 4


def _rng(i):
    return np.random.default_rng(1000 + i)


def _gemm(i):
    r = _rng(i)
    m, n, k = 17 + 13 * i, 40 + 7 * i, 33 + 5 * i
    a, b = r.standard_normal((m, k), np.float32), r.standard_normal((k, n), np.float32)
    return lambda: nnx.gemm(a, b)


def _conv(i):
    r = _rng(i)
    x = r.standard_normal((2 + i % 3, 3, 12 + i, 10 + i), np.float32)
    w = r.standard_normal((4 + i % 5, 3, 3, 3), np.float32)
    b = r.standard_normal(w.shape[0], np.float32)

    def run():
        y = _core.conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), True)
        grads = _core.conv2d_backward(y, x, w, (1, 1), (1, 1), (1, 1), True, True, True)
        return (y, *grads)
    return run


def _pool_norm(i):
    r = _rng(i)
    x = r.standard_normal((3, 2 + i % 4, 8 + i, 9), np.float64 if i % 2 else np.float32)

    def run():
        y, idx = _core.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
        gx = _core.max_pool2d_backward(y, idx, list(x.shape))
        bn = _core.batch_norm_forward_train(x, None, None, 1e-5)
        return y, idx, gx, *bn, _core.avg_pool2d_forward(x, (3, 3), (1, 1), (1, 1), True)
    return run


def _losses(i):
    r = _rng(i)
    logits = r.standard_normal((20 + i, 7), np.float32)
    target = r.integers(0, 7, 20 + i).astype(np.int64)

    def run():
        loss, probs = _core.cross_entropy_forward(logits, target, 0.1)
        grad = _core.cross_entropy_backward(np.ones_like(loss), probs, target, 0.1)
        return (loss, grad, _core.softmax_forward(logits, True),
                _core.act_forward("elu", logits, 1.0))
    return run


def _knn(i):
    r = _rng(i)
    q, refs = r.standard_normal((30, 5 + i), np.float32), r.standard_normal((200, 5 + i),
                                                                               np.float32)
    return lambda: _core.knn_search(q, refs, 3, "l2" if i % 2 else "l1")


def _adam(i):
    r = _rng(i)
    p0, g = r.standard_normal(1000 + 100 * i, np.float32), r.standard_normal(1000 + 100 * i,
                                                                            np.float32)

    def run():  # own state per call: the in-place update is the result
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for step in range(1, 4):
            _core.adam_step(p, g, m, v, step=step, lr=1e-2)
        return p, m, v
    return run


CALLS = [make(i) for make in (_gemm, _conv, _pool_norm, _losses, _knn, _adam) for i in range(6)]


def _flatten(result):
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in _flatten(r)]
    return [np.asarray(result)]


def _assert_bitwise_equal(got, expected):
    for a, b in zip(_flatten(got), _flatten(expected), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def _run_concurrently(calls, rounds, also=None):
    """Runs every call `rounds` times from THREADS threads in shuffled orders; returns the
    results per call. ``also`` runs in one more thread until the calls are done."""
    jobs = [i for i in range(len(calls)) for _ in range(rounds)]
    random.Random(0).shuffle(jobs)
    stop = threading.Event()
    extra = threading.Thread(target=also, args=(stop,)) if also else None
    if extra:
        extra.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(THREADS) as ex:
            results = list(ex.map(lambda i: (i, calls[i]()), jobs))
    finally:
        stop.set()
        if extra:
            extra.join()
    return results


def test_concurrent_kernels_match_serial_results():
    serial = [call() for call in CALLS]
    for i, result in _run_concurrently(CALLS, rounds=3):
        _assert_bitwise_equal(result, serial[i])


def test_concurrent_kernels_while_the_thread_count_changes(threads):
    serial = [call() for call in CALLS]

    def toggle(stop):
        n = 0
        while not stop.is_set():
            _core.set_num_threads(1 + n % 2)
            n += 1

    for i, result in _run_concurrently(CALLS, rounds=2, also=toggle):
        _assert_bitwise_equal(result, serial[i])


def test_same_input_arrays_shared_by_all_threads():
    # Read-only sharing: every thread reads the same x and w at the same time.
    call = _conv(3)
    expected = call()
    with concurrent.futures.ThreadPoolExecutor(THREADS) as ex:
        for result in ex.map(lambda _: call(), range(24)):
            _assert_bitwise_equal(result, expected)


def _lenet(seed):
    nnx.manual_seed(seed)
    return models.LeNet5()


def _train(model, seed):
    r = np.random.default_rng(seed)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = nnx.tensor(r.standard_normal((4, 1, 28, 28)).astype(np.float32))
    y = nnx.tensor(r.integers(0, 10, 4))
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.data.copy() for p in model.parameters()]


def test_independent_training_runs_in_threads_match_serial_runs():
    # Autograd, modules and optimizers keep no shared mutable state: four models trained at
    # once in four threads end exactly where they end one after another. (Models are built
    # serially: nnx.manual_seed and the initialisation share the global generator.)
    seeds = range(4)
    serial = [_train(_lenet(s), s) for s in seeds]
    built = [_lenet(s) for s in seeds]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        parallel = list(ex.map(lambda s: _train(built[s], s), seeds))
    for (l1, p1), (l2, p2) in zip(serial, parallel):
        assert l1 == l2
        for a, b in zip(p1, p2):
            assert a.tobytes() == b.tobytes()


def test_grad_mode_is_per_thread():
    seen = {}

    def worker():
        seen["worker"] = nnx.is_grad_enabled()

    with nnx.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not nnx.is_grad_enabled()
    assert seen["worker"] is True


def _runs_while_inside(fn, call) -> int:
    """How often this thread ran while another thread was inside the C function ``fn``.

    A profile hook in the other thread marks entry and exit of ``fn``; this thread counts loop
    passes that see the mark. The switch interval is raised so that the interpreter never takes
    the GIL from a thread by force: this thread then runs during ``fn`` only if ``fn`` itself
    released the GIL, and the count is exactly 0 when it does not."""
    inside = [False]
    done = threading.Event()

    def profile(frame, event, arg):
        if arg is fn:
            if event == "c_call":
                inside[0] = True
            elif event in ("c_return", "c_exception"):
                inside[0] = False

    def worker():
        sys.setprofile(profile)
        try:
            call()
        finally:
            sys.setprofile(None)
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        t = threading.Thread(target=worker)
        t.start()
        count = 0
        while not done.is_set():
            if inside[0]:
                count += 1
            time.sleep(0)  # gives the GIL to the other thread whenever it waits for it
        t.join()
    finally:
        sys.setswitchinterval(interval)
    return count


def test_the_gil_probe_sees_a_function_that_holds_the_gil():
    assert _runs_while_inside(sum, lambda: sum(range(3 * 10**6))) == 0


@pytest.mark.parametrize("kernel", ["gemm", "conv2d_forward", "softmax_forward", "knn_search",
                                    "adam_step"])
def test_kernels_release_the_gil(kernel):
    r = np.random.default_rng(0)
    a = r.standard_normal((600, 600), np.float32)
    x = r.standard_normal((16, 16, 48, 48), np.float32)
    w = r.standard_normal((32, 16, 3, 3), np.float32)
    v = r.standard_normal(4_000_000, np.float32)
    calls = {
        "gemm": lambda: _core.gemm(a, a, np.empty_like(a)),
        "conv2d_forward": lambda: _core.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1)),
        "softmax_forward": lambda: _core.softmax_forward(x),
        "knn_search": lambda: _core.knn_search(a, a, 5, "l1"),
        "adam_step": lambda: _core.adam_step(v.copy(), v, np.zeros_like(v), np.zeros_like(v),
                                             step=1, lr=0.1),
    }
    assert _runs_while_inside(getattr(_core, kernel), calls[kernel]) > 0
