"""No leaks: after ``del`` and ``gc.collect()`` no tensor, graph node, parameter or workspace
stays alive, and the memory of a long training run stays flat after warm-up.

Memory is measured as the process's resident set (``/proc/self/statm``; numpy's and nnx's
64-byte aligned arrays both count there) and, for Python objects, with tracemalloc. The bounds
allow for allocator noise (a few MB) and are far below what a leak of one batch's activations
or gradients per step would add over hundreds of steps.
"""

import gc
import os
import subprocess
import sys
import tracemalloc
import weakref

import numpy as np
import pytest

import nnx
import nnx.nn.functional as F
from nnx import _core, autograd, models, optim

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="needs /proc/self/statm (Linux) for the resident size")

MB = 1 << 20


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live(cls) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def _lenet_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


# ---------------------------------------------------------------------------------------------
# Objects


def test_graph_and_tensors_are_freed_after_del():
    nodes_before = live(autograd.Context)
    model = nnx.nn.Sequential(nnx.nn.Linear(6, 5), nnx.nn.ReLU(), nnx.nn.Linear(5, 3))
    x = nnx.randn(4, 6, requires_grad=True)
    out = model(x)
    loss = (out * out).sum()
    loss.backward(retain_graph=True)  # the saved arrays stay until the graph goes
    refs = [weakref.ref(t) for t in (x, out, loss, x.grad, *model.parameters())]
    assert live(autograd.Context) > nodes_before
    del model, x, out, loss
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)
    assert live(autograd.Context) == nodes_before


def test_graph_is_freed_without_gc_when_there_is_no_cycle():
    # The graph holds no reference cycle: dropping the loss frees it at once (reference
    # counting), so memory does not wait for a garbage-collector pass.
    gc.disable()
    try:
        x = nnx.randn(3, 4, requires_grad=True)
        y = (x * 2.0).relu().sum()
        ref = weakref.ref(y)
        node = y.grad_fn
        del y
        assert ref() is None
        del node
        y = (x * 3.0).sum()
        y.backward()
        ref = weakref.ref(y)
        del y
        assert ref() is None
    finally:
        gc.enable()


def test_optimizer_and_training_state_are_freed():
    model = models.LeNet5()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = nnx.randn(2, 1, 28, 28), nnx.tensor(np.array([1, 2]))
    _lenet_step(model, opt, x, y)
    refs = [weakref.ref(p) for p in model.parameters()] + [weakref.ref(opt), weakref.ref(model)]
    del model, opt
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


def test_anomaly_mode_frees_the_graph_too():
    nodes_before = live(autograd.Context)
    x = nnx.randn(3, 4, requires_grad=True)
    with autograd.detect_anomaly():
        loss = (x.sigmoid() * 2.0).sum()
        loss.backward()
    ref = weakref.ref(loss)
    del loss, x
    gc.collect()
    assert ref() is None and live(autograd.Context) == nodes_before


# ---------------------------------------------------------------------------------------------
# Memory


def test_lenet5_training_memory_stays_flat():
    # 1000 steps of LeNet-5 on 16 random batches of 8 in turn. After warm-up (allocator pools,
    # workspaces, optimizer state) the resident size and the Python heap stay flat: one
    # leaked batch of activations per step would add ~200 MB over the run, one leaked Python
    # float per step ~25 KB (the heap grows by ~10 KB without a leak).
    nnx.manual_seed(0)
    rng = np.random.default_rng(0)
    model = models.LeNet5()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batches = [(nnx.tensor(rng.standard_normal((8, 1, 28, 28)).astype(np.float32)),
                nnx.tensor(rng.integers(0, 10, 8))) for _ in range(16)]
    nodes = live(autograd.Context)
    for i in range(200):
        _lenet_step(model, opt, *batches[i % 16])
    gc.collect()
    tracemalloc.start()
    try:
        base_rss, (base_py, _) = rss(), tracemalloc.get_traced_memory()
        losses = []
        for i in range(800):
            losses.append(_lenet_step(model, opt, *batches[i % 16]).item())
        gc.collect()
        grown_rss = rss() - base_rss
        grown_py = tracemalloc.get_traced_memory()[0] - base_py
    finally:
        tracemalloc.stop()
    assert np.isfinite(losses).all()
    assert grown_rss < 8 * MB, f"resident size grew by {grown_rss / MB:.1f} MB in 800 steps"
    assert grown_py < MB // 4, f"Python heap grew by {grown_py / 1024:.0f} KB in 800 steps"
    assert live(autograd.Context) == nodes  # no graph node outlives its step


def test_failing_kernel_calls_do_not_leak():
    # Error paths free what they allocated (arrays made before a check fails, messages).
    x = np.ones((16, 3, 32, 32), np.float32)
    w = np.ones((8, 2, 3, 3), np.float32)  # 2 input channels: every call raises
    for _ in range(200):
        with pytest.raises(ValueError):
            _core.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1))
    before = rss()
    for _ in range(5000):
        with pytest.raises(ValueError):
            _core.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1))
        with pytest.raises(TypeError):
            _core.act_forward("relu", x.astype(np.int32))
        with pytest.raises(ValueError):
            _core.softmax_forward(x[:, :, ::2])
    assert rss() - before < 4 * MB


def test_kernel_results_are_freed():
    # 2000 calls each returning 2 MB arrays: resident size bounded, so every result and
    # every temporary buffer is released.
    x = np.random.default_rng(0).standard_normal((128, 4096)).astype(np.float32)
    for _ in range(20):
        _core.softmax_forward(x)
    before = rss()
    for _ in range(2000):
        y = _core.softmax_forward(x)
        y = _core.act_forward("tanh", y)
        y = nnx.gemm(y[:64], x[:64].T.copy())
    del y
    assert rss() - before < 16 * MB


# Run in a fresh process: the measurement needs glibc's mmap threshold pinned (mallopt), which
# would otherwise stay pinned for every test after this one.
_WORKSPACE_PROBE = """
import ctypes, os, threading
import numpy as np
from nnx import _core

# Blocks of 256 KiB or more are mapped and unmapped on their own. glibc's dynamic threshold
# (raised by earlier frees) would otherwise put the smaller buffers, such as the 4 MB padded
# image, in per-thread arenas, which keep freed memory resident for a while.
if ctypes.CDLL(None).mallopt(-3, 256 * 1024) != 1:  # M_MMAP_THRESHOLD
    raise SystemExit(3)

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

x = np.ones((1, 64, 128, 128), np.float32)
w = np.ones((8, 64, 3, 3), np.float32)

def in_thread():
    t = threading.Thread(target=lambda: _core.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1)))
    t.start()
    t.join()

for _ in range(2):
    in_thread()
before = rss()
for _ in range(12):
    in_thread()
print(rss() - before)
"""


def test_workspaces_of_finished_threads_are_released():
    # Each thread's convolution workspace belongs to that thread and goes with it: 12 threads
    # one after another must not keep 12 workspaces. The im2col buffer here is 64 * 3 * 3 x
    # 128 * 128 floats (38 MB): a kept one shows in the resident size.
    proc = subprocess.run([sys.executable, "-c", _WORKSPACE_PROBE], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode == 3:
        pytest.skip("no mallopt(M_MMAP_THRESHOLD) in this C library")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) < 24 * MB
