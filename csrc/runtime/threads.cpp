// nnx's own thread count, passed explicitly to every parallel region (num_threads clause), so it
// applies to kernels called from any Python thread, unlike omp_set_num_threads which is per thread.
#include <atomic>
#include <stdexcept>
#include <string>

#include "nnx/runtime.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnx {
namespace {

int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();  // honours OMP_NUM_THREADS
#else
  return 1;
#endif
}

std::atomic<int>& thread_count() {
  static std::atomic<int> count{default_threads()};
  return count;
}

}  // namespace

void set_num_threads(int n) {
  // The upper bound keeps a typo (1000000) from starting a million OpenMP threads on the next call.
  if (n < 1 || n > 1024)
    throw std::invalid_argument("set_num_threads: n must be in [1, 1024], got " + std::to_string(n));
#ifndef _OPENMP
  n = 1;  // built without OpenMP: every kernel is single-threaded
#endif
  thread_count().store(n);
}

int get_num_threads() { return thread_count().load(); }

}  // namespace nnx
