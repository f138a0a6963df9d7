"""Threads, ISA dispatch, environment variables and build information."""

import os
import subprocess
import sys

import pytest

import nnx
from nnx import _core


def run_python(code, **env):
    """Runs code in a fresh interpreter (environment variables are read at start-up)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("NNX_ISA", "OMP_NUM_THREADS")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=120)


def test_set_get_num_threads(threads):
    nnx.set_num_threads(3)
    assert nnx.get_num_threads() == 3
    with nnx.num_threads(1):
        assert nnx.get_num_threads() == 1
    assert nnx.get_num_threads() == 3


def test_num_threads_context_restores_on_error(threads):
    nnx.set_num_threads(2)
    with pytest.raises(RuntimeError):
        with nnx.num_threads(1):
            raise RuntimeError("boom")
    assert nnx.get_num_threads() == 2


def test_bad_thread_counts(threads):
    with pytest.raises(ValueError, match=r"n must be in \[1, 1024\], got 0"):
        nnx.set_num_threads(0)
    with pytest.raises(ValueError, match="got 100000"):
        nnx.set_num_threads(100000)
    assert nnx.get_num_threads() >= 1
    with pytest.raises(TypeError, match="n must be an int"):
        nnx.set_num_threads("2")


@pytest.mark.parametrize("n", ["1", "3"])
def test_omp_num_threads_is_honoured(n):
    if "OpenMP" not in _core.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    r = run_python("import nnx; print(nnx.get_num_threads())", OMP_NUM_THREADS=n)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == n


@pytest.mark.parametrize("level", _core.supported_isas())
def test_nnx_isa_forces_a_level(level):
    r = run_python("from nnx import _core; print(_core.active_isa())", NNX_ISA=level)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level


def test_nnx_isa_unknown_level_is_a_clear_error():
    r = run_python("import nnx", NNX_ISA="sse9")
    assert r.returncode != 0
    assert "NNX_ISA='sse9' is not one of ref, avx2, avx512" in r.stderr
    assert "Segmentation" not in r.stderr


def test_unsupported_level_is_a_clear_error():
    missing = [x for x in ("avx2", "avx512") if x not in _core.supported_isas()]
    if not missing:
        pytest.skip("this CPU supports every ISA level; nothing to refuse")
    r = run_python("import nnx", NNX_ISA=missing[0])
    assert r.returncode != 0 and "does not support" in r.stderr


def test_set_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown ISA 'fast'"):
        _core.set_isa("fast")


def test_info_reports_everything():
    info = nnx.info()
    for key in ("version", "isa", "cpu_features", "num_threads", "openmp", "build_type"):
        assert key in info
    assert info["version"] == nnx.__version__
    assert info["isa"] in _core.supported_isas()


def test_cli_info_runs_the_gemm_check():
    r = subprocess.run([sys.executable, "-m", "nnx", "info", "--size", "128", "--repeats", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "isa:" in r.stdout and "gemm check 128x128x128" in r.stdout and "(ok)" in r.stdout


def test_fma_peak_probe_is_positive():
    assert _core.measure_fma_peak_gflops(1, 0.01) > 0
