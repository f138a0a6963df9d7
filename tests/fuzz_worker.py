"""The fuzzing engine: calls nnx functions with malformed inputs drawn by hypothesis.

``tests/test_fuzz.py`` runs this file as a subprocess, one per family of functions, so that a
crash (a signal) kills the worker and not pytest; the parent then names the input that did it.
Run by hand: ``python tests/fuzz_worker.py --family core-conv --examples 200`` (``--list``
shows the families, ``--table`` prints the outcomes per family, ``--include-known`` also calls
the inputs of known, not yet fixed bugs).

Every call gets one of the acceptable outcomes: a result, or one of ``ACCEPTED`` with a message.
On top of that the engine checks that a call that succeeded

- left unchanged every array it does not document as an output, and every read-only array;
- computed the same result from a strided, reversed, Fortran-ordered or unaligned view as from a
  C-contiguous copy of the same values (an array read with the wrong strides would differ).

Protocol on stdout, one line each, flushed:
  ``CALL <target> <description of the arguments>`` before every call;
  ``BAD <json>`` for an unacceptable outcome (the worker goes on with the next input);
  ``SLOW <json>`` for a call that took more than ``SLOW`` seconds (reported, not a failure);
  ``DONE <json>`` at the end: examples run, outcomes, known bugs skipped, per target.
A call that has not returned after ``HANG`` seconds ends the worker (exit status 1, "Timeout"
and the stacks on stderr).

Targets (``Target``) come from ``fuzz_core_targets`` (every public function of ``nnx._core``) and
``fuzz_api_targets`` (the public Python API). A target's ``build`` draws arguments that are
valid or nearly so, with edge-case sizes and values; ``mutate`` then breaks a few of them (wrong
dtype, ndim, shape, layout, read-only, aliasing, NaN/Inf, huge sizes, wrong types), so that
inputs reach deep into the checks instead of failing at the first one.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import faulthandler
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from typing import Callable

import numpy as np
from fuzz_inputs import Draw, TArg, describe, mutate
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# The exceptions a malformed input may raise; anything else (AttributeError, KeyError,
# ZeroDivisionError, SystemError, ...) is reported, as is one of these without a message.
ACCEPTED = (ValueError, TypeError, IndexError, OverflowError, MemoryError, RuntimeError)

# Address-space limit of a worker: an allocation too large for it must raise MemoryError instead
# of taking the machine's memory.
MEMORY_LIMIT = 4 << 30

# Seconds: a call on these small inputs taking longer than SLOW is reported; one taking longer
# than HANG is a hang, and a watchdog thread ends the worker.
SLOW = 1.0
HANG = 60.0

@dataclasses.dataclass
class Target:
    """One function under test. ``build(draw)`` returns ``(args, kwargs)``; ``outputs`` names
    the arguments the function writes into (positions or keywords); ``call`` replaces a plain
    ``fn(*args, **kwargs)`` where arguments need wrapping; ``restore`` undoes global changes."""

    name: str
    family: str
    fn: Callable
    build: Callable
    outputs: frozenset = frozenset()
    call: Callable | None = None
    restore: Callable | None = None
    # Whether results of a layout-mutated call are compared with a contiguous call (off for
    # functions with random results).
    deterministic: bool = True
    # Positions whose Tensor argument may have its data mutated but stays a Tensor (self).
    keep_tensor: frozenset = frozenset()
    # Exceptions besides ACCEPTED that are the right answer here (OSError for a bad path).
    also_accepted: tuple = ()
    # Whether output arguments of a layout-mutated call are compared too (not where the call
    # writes into a Tensor that copied a non-contiguous array, by design).
    compare_outputs: bool = True


@dataclasses.dataclass
class KnownIssue:
    """A known crash, hang or wrong error, not fixed yet: the fuzz run skips matching inputs
    (so that the rest of the family is still tested) and ``test_fuzz.py`` runs ``reproducer``
    in a subprocess as a strict xfail, which passes once the bug is fixed."""

    id: str
    targets: tuple  # names of the targets whose inputs it concerns
    reason: str
    matches: Callable  # (args, kwargs) -> bool
    reproducer: str    # Python code; must exit 0 once fixed (it catches the expected error)
    timeout: float = 60.0
    # Fixed: the fuzz run no longer skips its inputs, and the reproducer stays as a regression
    # test that must pass.
    fixed: bool = False


def _emit(kind: str, text: str) -> None:
    sys.stdout.write(f"{kind} {text}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# Checking one call


def _contiguous_args(args, kwargs):
    """C-contiguous copies of the array arguments (also inside Tensor arguments and lists),
    preserving aliasing between them."""
    memo: dict = {}

    def copy(v):
        if isinstance(v, TArg):
            return TArg(copy(v.array), v.requires_grad)
        if isinstance(v, list):
            return [copy(x) for x in v]
        if not isinstance(v, np.ndarray) or not _small(v):
            return v
        if id(v) not in memo:
            # Not np.ascontiguousarray: it makes a 0-d array 1-d.
            memo[id(v)] = np.array(v, order="C", copy=True)
        return memo[id(v)]

    return [copy(a) for a in args], {k: copy(v) for k, v in kwargs.items()}


def _array_of(v):
    if isinstance(v, TArg):
        v = v.array
    return v if isinstance(v, np.ndarray) else None


def _small(a: np.ndarray) -> bool:
    # Broadcast views of more than 2**32 elements cannot be copied (and are read-only anyway).
    return a.size * a.itemsize < 1 << 26


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "_data") and hasattr(b, "_data"):
        a, b = a._data, b._data
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    return type(a) is type(b)


def _unchanged(before: np.ndarray, after: np.ndarray) -> bool:
    if after.dtype.hasobject:  # the same objects (NaN is not equal to itself)
        return all(x is y for x, y in zip(before.flat, after.flat))
    return bool(np.array_equal(before, after, equal_nan=after.dtype.kind in "fc"))


def _items(args, kwargs):
    return list(enumerate(args)) + list(kwargs.items())


class Checker:
    def __init__(self):
        self.stats = collections.defaultdict(collections.Counter)
        self.bad: list[dict] = []

    def report(self, target: Target, desc: str, problem: str) -> None:
        entry = {"target": target.name, "input": desc, "problem": problem}
        self.bad.append(entry)
        self.stats[target.name]["bad"] += 1
        _emit("BAD", json.dumps(entry))

    def invoke(self, target: Target, args, kwargs):
        # A call that does not return within HANG seconds is a hang: a watchdog thread dumps
        # the stacks and exits, also when the main thread is stuck in C++ without the GIL.
        faulthandler.dump_traceback_later(HANG, exit=True)
        try:
            if target.call is not None:
                return target.call(target.fn, args, kwargs)
            return target.fn(*args, **kwargs)
        finally:
            faulthandler.cancel_dump_traceback_later()

    def run(self, target: Target, args, kwargs, layout: list, known: list) -> None:
        desc = describe(args, kwargs)
        stats = self.stats[target.name]
        for issue in known:
            if target.name in issue.targets and _safe_match(issue, args, kwargs):
                stats[f"skipped known {issue.id}"] += 1
                return
        stats["examples"] += 1
        before = {}
        for k, v in _items(args, kwargs):
            a = _array_of(v)
            if a is not None and _small(a) and (k not in target.outputs or not a.flags.writeable):
                before[k] = a.copy()
        reference = _contiguous_args(args, kwargs) if layout else None
        _emit("CALL", f"{target.name} {desc}")
        start = time.perf_counter()
        try:
            result = self.invoke(target, args, kwargs)
        except Exception as e:  # noqa: BLE001 - judging it is the point
            if not isinstance(e, ACCEPTED + target.also_accepted):
                self.report(target, desc, f"{type(e).__name__}: {e}")
            elif not str(e).strip():
                self.report(target, desc, f"{type(e).__name__} without a message")
            else:
                stats[type(e).__name__] += 1
            return
        finally:
            if target.restore is not None:
                target.restore()
            elapsed = time.perf_counter() - start
            if elapsed > SLOW:
                stats["slow"] += 1
                _emit("SLOW", json.dumps({"target": target.name, "input": desc,
                                          "seconds": round(elapsed, 2)}))
        stats["result"] += 1
        outputs = [_array_of(v) for k, v in _items(args, kwargs)
                   if k in target.outputs and _array_of(v) is not None]
        for k, v in _items(args, kwargs):
            a = _array_of(v)
            if k not in before or any(np.may_share_memory(a, o) for o in outputs):
                continue  # not checked, or an input aliasing an output (changes with it)
            if not _unchanged(before[k], a):
                what = "read-only array" if not a.flags.writeable else "input"
                self.report(target, desc, f"argument {k}: the call changed a {what}")
        self._read(target, desc, result)
        if reference is not None and target.deterministic:
            self._compare_layouts(target, desc, result, args, kwargs, reference, layout)

    def _read(self, target, desc, result) -> None:
        # Reads every element of a small result (an object array's pointers too): garbage
        # memory shows here. numpy itself is slow to print arrays of 2**63 empty items.
        arrays = [a for a in (result if isinstance(result, (tuple, list)) else (result,))
                  if isinstance(a, np.ndarray)]
        if any(math.prod(a.shape) > 1 << 20 for a in arrays):  # a.size can wrap for itemsize 0
            return
        faulthandler.dump_traceback_later(HANG, exit=True)
        try:
            repr(result)
        except Exception as e:  # noqa: BLE001
            self.report(target, desc, f"the result cannot be printed: {type(e).__name__}: {e}")
        finally:
            faulthandler.cancel_dump_traceback_later()

    def _compare_layouts(self, target, desc, result, args, kwargs, reference, layout):
        ref_args, ref_kwargs = reference
        try:
            expected = self.invoke(target, ref_args, ref_kwargs)
        except Exception as e:  # noqa: BLE001
            self.report(target, desc, f"accepts a {'/'.join(layout)} view but raises "
                        f"{type(e).__name__} for a contiguous copy: {e}")
            return
        finally:
            if target.restore is not None:
                target.restore()
        if not _same(result, expected):
            self.report(target, desc, f"a {'/'.join(layout)} view gives another result than a "
                        "contiguous copy of the same values (read with the wrong strides?)")
        for (k, v), (_, w) in zip(_items(args, kwargs), _items(ref_args, ref_kwargs)):
            if not target.compare_outputs:
                break
            v, w = _array_of(v), _array_of(w)
            if k in target.outputs and v is not None and w is not None and not _same(v, w):
                self.report(target, desc, f"output argument {k} of a {'/'.join(layout)} view "
                            "differs from that of a contiguous copy")


def _safe_match(issue: KnownIssue, args, kwargs) -> bool:
    try:
        return bool(issue.matches(args, kwargs))
    except Exception:  # noqa: BLE001 - a predicate that cannot tell does not match
        return False


# ---------------------------------------------------------------------------------------------
# Running


def _selftest_targets() -> list[Target]:
    """Deliberately broken functions, for the tests that prove the harness reports a crash, an
    unacceptable exception and a silently wrong result (``NNX_FUZZ_SELFTEST=1`` adds them)."""
    def check(x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be an array, got {type(x).__name__}")

    def segfault(x):
        check(x)
        if x.ndim == 2:
            import ctypes

            ctypes.string_at(0)  # reads address 0: SIGSEGV
        return x

    def attribute_error(x):
        check(x)
        if x.dtype != np.float32:
            return x.no_such_attribute
        return x

    def ignores_strides(x):
        # Reads the memory as if it were C-contiguous: wrong for strided and reversed views.
        check(x)
        if x.size == 0 or x.ndim == 0 or not x.flags.aligned:
            return x.copy()
        base = x if x.base is None else x.base
        flat = np.frombuffer(base, x.dtype) if base.flags.c_contiguous else x.ravel()
        return flat[: x.size].reshape(x.shape).copy()

    def build(d):
        return [d.array((d.pick((1, 2, 3)),) * d.pick((1, 2)), np.float32)], {}

    return [Target(f"selftest.{f.__name__}", "selftest", f, build)
            for f in (segfault, attribute_error, ignores_strides)]


def all_targets() -> dict[str, Target]:
    import fuzz_api_targets
    import fuzz_core_targets

    targets = {}
    extra = _selftest_targets() if os.environ.get("NNX_FUZZ_SELFTEST") == "1" else []
    for t in fuzz_core_targets.TARGETS + fuzz_api_targets.TARGETS + extra:
        assert t.name not in targets, t.name
        targets[t.name] = t
    return targets


def known_issues() -> list[KnownIssue]:
    import fuzz_api_targets
    import fuzz_core_targets

    return [i for i in fuzz_core_targets.KNOWN + fuzz_api_targets.KNOWN if not i.fixed]


def families(targets: dict[str, Target]) -> dict[str, list[Target]]:
    out: dict[str, list[Target]] = collections.defaultdict(list)
    for t in targets.values():
        out[t.family].append(t)
    return dict(out)


def fuzz(target: Target, examples: int, checker: Checker, known: list) -> None:
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        d = Draw(data)
        args, kwargs = target.build(d)
        args, kwargs, notes, layout = mutate(d, args, kwargs, target.keep_tensor)
        checker.run(target, args, kwargs, layout, known)

    run()


def limit_memory() -> None:
    # AddressSanitizer reserves terabytes of address space for its shadow memory: under it
    # (LD_PRELOAD of libasan, as an NNX_SANITIZE build needs), too-large allocations are its
    # allocator's business (ASAN_OPTIONS=allocator_may_return_null=1 makes them MemoryError).
    if "asan" in os.environ.get("LD_PRELOAD", "") or "ASAN_OPTIONS" in os.environ:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--family", action="append", help="family to fuzz (repeatable; default all)")
    p.add_argument("--target", action="append", help="only these targets")
    p.add_argument("--examples", type=int, default=None,
                   help="examples per target (default: CI's, see default_examples)")
    p.add_argument("--table", action="store_true",
                   help="print a table of the outcomes per family on stderr at the end")
    p.add_argument("--include-known", action="store_true",
                   help="also call the inputs of known crashes (they may kill the worker)")
    p.add_argument("--list", action="store_true", help="list families and targets, then exit")
    opts = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    targets = all_targets()
    groups = families(targets)
    if opts.list:
        for fam, ts in sorted(groups.items()):
            print(f"{fam}: {' '.join(t.name for t in ts)}")
        return 0
    limit_memory()
    # Paths are fuzzed too (nnx.save to "RELU"): whatever a call writes lands in a scratch
    # directory, removed at the end.
    scratch = tempfile.mkdtemp(prefix="nnx-fuzz-")
    os.chdir(scratch)
    np.seterr(all="ignore")
    import warnings

    warnings.simplefilter("ignore")
    chosen = [t for fam in (opts.family or sorted(groups)) for t in groups[fam]]
    if opts.target:
        chosen = [t for t in chosen if t.name in opts.target]
    known = [] if opts.include_known else known_issues()
    checker = Checker()
    t0 = time.perf_counter()
    for target in chosen:
        start = time.perf_counter()
        fuzz(target, opts.examples or default_examples(target.family), checker, known)
        checker.stats[target.name]["seconds"] = round(time.perf_counter() - start, 2)
    summary = {"seconds": round(time.perf_counter() - t0, 2),
               "targets": {k: dict(v) for k, v in checker.stats.items()},
               "bad": len(checker.bad)}
    _emit("DONE", json.dumps(summary))
    if opts.table:
        print_table(summary, targets, sys.stderr)
    os.chdir(os.path.dirname(scratch))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def default_examples(family: str) -> int:
    """Examples per target in CI: the kernels are cheap to call, the Python API much less so.
    ``NNX_FUZZ_EXAMPLES`` overrides it for a deeper run."""
    scale = os.environ.get("NNX_FUZZ_EXAMPLES")
    if scale:
        return int(scale)
    return 100 if family.startswith("core") else 25


def print_table(summary: dict, targets: dict, out) -> None:
    rows = collections.defaultdict(collections.Counter)
    for name, stats in summary["targets"].items():
        row = rows[targets[name].family]
        row["targets"] += 1
        for key, n in stats.items():
            if key.startswith("skipped"):
                row["known"] += n
            elif key in ("examples", "result", "bad", "slow"):
                row[key] += n
            elif key != "seconds":  # the name of an accepted exception
                row["raised"] += n
    cols = ("targets", "examples", "result", "raised", "known", "bad", "slow")
    print("| family | " + " | ".join(cols) + " |", file=out)
    print("|---" * (len(cols) + 1) + "|", file=out)
    total = collections.Counter()
    for fam in sorted(rows):
        total.update(rows[fam])
        print(f"| {fam} | " + " | ".join(str(rows[fam][c]) for c in cols) + " |", file=out)
    print("| all | " + " | ".join(str(total[c]) for c in cols) + " |", file=out)
    print(f"({summary['seconds']} s)", file=out)


if __name__ == "__main__":
    # Run as the module fuzz_worker, not __main__, so that the target modules (which import
    # fuzz_worker) share its classes.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fuzz_worker

    sys.exit(fuzz_worker.main())
