"""Malformed inputs never crash nnx: hypothesis-driven fuzzing of every public function of
``nnx._core`` and of the public Python API, each family in its own subprocess.

The engine is ``fuzz_worker.py`` (targets in ``fuzz_core_targets.py`` and
``fuzz_api_targets.py``). A worker dying by a signal, hanging, or reporting an unacceptable
outcome (another exception than ValueError/TypeError/IndexError/OverflowError/MemoryError/
RuntimeError, one without a message, a changed input, a result that depends on the memory
layout) fails its family's test, naming the input. Examples are drawn with a fixed seed
(``derandomize``), so a run is repeatable; ``NNX_FUZZ_EXAMPLES`` raises the number of examples
per function (CI keeps the defaults below).

Known, not yet fixed bugs are skipped by the fuzz run and tested as strict xfails with a
minimal reproducer each: fixing one turns its xfail into a failure that says to mark the entry
of ``KNOWN`` ``fixed=True``, which keeps the reproducer as a regression test and lets the fuzz
run draw those inputs again.
"""

import concurrent.futures
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile

import fuzz_api_targets
import fuzz_core_targets
import fuzz_inputs
import fuzz_worker
import numpy as np
import pytest

import nnx
from nnx import _core, optim
from nnx.tensor import Tensor

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "fuzz_worker.py")
TIMEOUT = 600  # seconds per family: only a hang comes near it
MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"
FAMILIES = sorted({t.family for t in fuzz_core_targets.TARGETS + fuzz_api_targets.TARGETS})
KNOWN = fuzz_core_targets.KNOWN + fuzz_api_targets.KNOWN


def _examples(family: str) -> int:
    return fuzz_worker.default_examples(family)


def run_worker(*args, env=None, timeout=TIMEOUT):
    """Runs the worker; returns (returncode or 'timeout', stdout, stderr)."""
    # The worker imports the nnx this process imported, wherever it is installed.
    path = [os.path.dirname(os.path.dirname(nnx.__file__)), os.environ.get("PYTHONPATH", "")]
    environ = dict(os.environ, PYTHONFAULTHANDLER="1", PYTHONPATH=os.pathsep.join(path),
                   **(env or {}))
    if os.path.exists(MALLOC_DEBUG) and "LD_PRELOAD" not in environ \
            and "ASAN_OPTIONS" not in environ:
        # glibc's checking allocator: heap corruption aborts at the free of the damaged block,
        # in the call that did it, not at some later call.
        environ.update(LD_PRELOAD=MALLOC_DEBUG, MALLOC_CHECK_="3")
    # Whatever the worker leaves behind (files it was fuzzed into writing, a scratch directory
    # after a crash) goes with this directory.
    with tempfile.TemporaryDirectory(prefix="nnx-fuzz-") as scratch:
        environ["TMPDIR"] = scratch
        try:
            p = subprocess.run([sys.executable, WORKER, *args], capture_output=True, text=True,
                               timeout=timeout, env=environ, cwd=scratch)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
            return "timeout", out, err
    return p.returncode, p.stdout, p.stderr


def problems(result) -> list[str]:
    """What went wrong in a worker run, as readable lines (empty: all good)."""
    code, out, err = result
    lines = out.splitlines()
    calls = [line[5:] for line in lines if line.startswith("CALL ")]
    found = []
    if code == "timeout" or (isinstance(code, int) and code != 0):
        if code == "timeout":
            what = f"hung (no answer in {TIMEOUT} s)"
        elif "Timeout (" in err:  # the worker's watchdog (fuzz_worker.HANG)
            what = f"hung in a call (no answer in {fuzz_worker.HANG:.0f} s)"
        elif code < 0:
            what = f"crashed with {signal.Signals(-code).name}"
        else:
            what = f"exited with status {code}"
        last = "\n    ".join(calls[-3:]) or "(before the first call)"
        found.append(f"the worker {what}; the last inputs, the culprit last:\n    {last}\n"
                     f"  stderr: {err.strip()[-1500:]}")
    for line in lines:
        if line.startswith("BAD "):
            bad = json.loads(line[4:])
            found.append(f"{bad['target']}{bad['input']}: {bad['problem']}")
    return found


def summary(result) -> dict:
    for line in result[1].splitlines():
        if line.startswith("DONE "):
            return json.loads(line[5:])
    return {}


@pytest.fixture(scope="module")
def family_runs(request):
    """Runs the selected families' workers, one per core (at least two) at a time."""
    wanted = sorted({item.callspec.params["family"] for item in request.session.items
                     if getattr(item, "callspec", None) and "family" in item.callspec.params
                     and item.module is request.module})
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        futures = {f: ex.submit(run_worker, "--family", f, "--examples", str(_examples(f)))
                   for f in wanted}
        return {f: fut.result() for f, fut in futures.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_fuzz_family(family, family_runs):
    result = family_runs[family]
    found = problems(result)
    assert not found, f"{len(found)} problem(s) in family {family}:\n" + "\n".join(found[:30])
    done = summary(result)
    assert done, "the worker gave no summary"
    assert done["bad"] == 0
    targets = {t.name for t in fuzz_worker.all_targets().values() if t.family == family}
    assert set(done["targets"]) == targets
    for name, stats in done["targets"].items():
        # Every function was really called, and most inputs were not skipped as known bugs.
        assert stats.get("examples", 0) >= _examples(family) // 2, (name, stats)


# ---------------------------------------------------------------------------------------------
# Coverage: a new public function cannot slip past the fuzzer.

def _core_functions():
    return {n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n))}


def test_every_core_function_is_fuzzed():
    fuzzed = {t.name for t in fuzz_core_targets.TARGETS}
    missing = _core_functions() - fuzzed
    assert not missing, f"public nnx._core functions without a fuzz target: {sorted(missing)}"
    assert fuzzed <= _core_functions(), fuzzed - _core_functions()


def _python_api():
    names = {f"nnx.{n}" for n in nnx.__all__
             if callable(getattr(nnx, n)) and not inspect.ismodule(getattr(nnx, n))}
    names |= {f"F.{n}" for n in nnx.nn.functional.__all__}
    names |= {f"Tensor.{n}" for n in dir(Tensor) if not n.startswith("_")
              and callable(getattr(Tensor, n))}
    names |= {"Tensor.__getitem__", "Tensor.__setitem__"}
    names |= {f"nn.{n}" for n in nnx.nn.__all__ if inspect.isclass(getattr(nnx.nn, n))}
    names |= {f"optim.{n}" for n in optim.__all__ if inspect.isclass(getattr(optim, n))
              and issubclass(getattr(optim, n), optim.Optimizer) and n != "Optimizer"}
    return names


def test_every_python_api_function_is_fuzzed():
    fuzzed = {t.name for t in fuzz_api_targets.TARGETS}
    missing = _python_api() - fuzzed
    assert not missing, f"public Python API without a fuzz target: {sorted(missing)}"


# ---------------------------------------------------------------------------------------------
# The harness itself: it must see a crash, a bad exception and a layout-dependent result.

def _selftest(target):
    return run_worker("--family", "selftest", "--target", target, "--examples", "150",
                      env={"NNX_FUZZ_SELFTEST": "1"}, timeout=120)


def test_harness_reports_a_crash_with_its_input():
    found = problems(_selftest("selftest.segfault"))
    assert len(found) == 1 and "crashed with SIGSEGV" in found[0]
    assert "selftest.segfault (array(shape=(" in found[0]  # the 2-D input that did it


def test_harness_reports_an_unacceptable_exception():
    found = problems(_selftest("selftest.attribute_error"))
    assert found and all("AttributeError" in f for f in found)


def test_harness_reports_a_result_that_depends_on_the_layout():
    found = problems(_selftest("selftest.ignores_strides"))
    assert found and all("another result than a contiguous copy" in f for f in found)


def test_known_issues_name_real_targets():
    # Each entry names real targets, so that its skip does not silently cover nothing.
    names = {t.name for t in fuzz_core_targets.TARGETS + fuzz_api_targets.TARGETS}
    for issue in KNOWN:
        assert set(issue.targets) <= names, (issue.id, set(issue.targets) - names)
    assert len({i.id for i in KNOWN}) == len(KNOWN)


# ---------------------------------------------------------------------------------------------
# Known bugs in C++, one reproducer each: strict xfails until fixed.

def _run_reproducer(issue):
    try:
        p = subprocess.run([sys.executable, "-c", issue.reproducer], capture_output=True,
                           text=True, timeout=issue.timeout)
    except subprocess.TimeoutExpired:
        return f"hung (no answer in {issue.timeout} s)"
    if p.returncode < 0:
        return f"crashed with {signal.Signals(-p.returncode).name}"
    if p.returncode != 0:
        return f"failed: {(p.stderr or p.stdout).strip()[-500:]}"
    return None


@pytest.mark.parametrize("issue", [
    pytest.param(i, id=i.id,
                 marks=() if i.fixed else pytest.mark.xfail(strict=True, reason=i.reason))
    for i in KNOWN])
def test_known_issue_is_fixed(issue):
    failure = _run_reproducer(issue)
    assert failure is None, f"{issue.id}: {failure}\nreproducer:\n{issue.reproducer}"


def test_fuzz_values_cover_the_issue_list():
    # The mutation pools hold what the issue asks for: every wrong dtype, a 32-bit overflow,
    # NaN and Inf.
    dtypes = {np.dtype(t) for t in fuzz_inputs.OTHER_DTYPES}
    for t in (np.int32, np.bool_, np.float16, np.complex64, object):
        assert np.dtype(t) in dtypes
    assert any(abs(v) >= 2**32 for v in fuzz_inputs.BAD_INTS)
    assert any(v != v for v in fuzz_inputs.BAD_FLOATS)
    assert float("inf") in fuzz_inputs.BAD_FLOATS
