// Measured FMA peak, for benchmarks that report "% of peak".
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "nnx/runtime.h"
#include "probe/probe.h"

namespace nnx {

double measure_fma_peak_gflops(int num_threads, double seconds) {
  if (num_threads < 1 || num_threads > 1024)
    throw std::invalid_argument("measure_fma_peak_gflops: num_threads must be in [1, 1024], got " +
                                std::to_string(num_threads));
  if (!(seconds >= 0.0 && seconds <= 60.0))
    throw std::invalid_argument("measure_fma_peak_gflops: seconds must be in [0, 60], got " +
                                std::to_string(seconds));
  int64_t (*probe)(int64_t) = nullptr;
  switch (active_isa()) {
    case Isa::avx512: probe = &kernels::avx512::f32_fma_probe; break;
    case Isa::avx2: probe = &kernels::avx2::f32_fma_probe; break;
    case Isa::ref: probe = &kernels::ref::f32_fma_probe; break;
  }
  // Every thread runs the same fixed amount of work; the best of several rounds is the peak
  // (anything slower was disturbed by something else on the machine).
  const int64_t iters = 1 << 20;
  double best = 0.0;
  const auto start = std::chrono::steady_clock::now();
  do {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t flops = 0;
#pragma omp parallel num_threads(num_threads) reduction(+ : flops)
    flops += probe(iters);
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    best = std::max(best, double(flops) / dt.count() / 1e9);
  } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds);
  return best;
}

}  // namespace nnx
