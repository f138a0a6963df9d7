#!/usr/bin/env bash
# Builds nnx._core with AddressSanitizer + UndefinedBehaviorSanitizer (-DNNX_SANITIZE=ON) into
# build/sanitize, and runs pytest against that build. Any sanitizer report aborts the test process,
# so a passing run means zero reports.
#
#     tools/sanitize.sh                       # kernel, fuzz and thread-safety tests
#     tools/sanitize.sh tests/test_gemm.py    # or any pytest arguments
#
# Python itself is not instrumented: the ASan runtime is preloaded so that it comes first (with
# libstdc++, whose __cxa_throw ASan must find at start-up to let C++ exceptions through), and leak
# detection is off (the interpreter keeps memory alive until exit by design).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/sanitize
cmake -S . -B "$build" -G Ninja -DNNX_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j2
# A copy of the Python package whose extension is the sanitized one.
pkg="$build/python"
rm -rf "$pkg" && mkdir -p "$pkg"
cp -r python/nnx "$pkg/nnx"
rm -f "$pkg"/nnx/_core*.so
cp "$build"/_core*.so "$pkg/nnx/"
if [ $# -eq 0 ]; then
  set -- tests/test_gemm.py tests/test_gemm_errors.py tests/test_nn_kernels.py \
    tests/test_cnn_kernels.py tests/test_conv.py tests/test_knn.py tests/test_optim.py \
    tests/test_runtime.py tests/test_thread_safety.py tests/test_fuzz.py::test_fuzz_family
fi
# Allocations over 8 GiB fail (the fuzzer asks for absurd sizes and expects MemoryError).
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=8192"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" PYTHONPATH="$pkg" \
  python -m pytest -q -p no:cacheprovider "$@"
