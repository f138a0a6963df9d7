// Native SGEMM benchmark: validates the active ISA's kernel against the float64 reference on every
// shape, then times it and reports GFLOP/s and % of the FMA peak measured on this machine.
//
//   build/bench/gemm_bench [--benchmark_min_time=0.05] [--benchmark_filter=...]
//   NNX_ISA=avx2 OMP_NUM_THREADS=1 build/bench/gemm_bench
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "nnx/nnx.h"

namespace {

double g_peak_gflops = 0.0;

struct Shape {
  int64_t m, k, n;
};

// Square sizes, then (M, K, N) of real layers: an MLP, a wide linear layer, LeNet-5's conv2 and
// conv1 as im2col GEMMs over a batch of 128, a large projection, a 10-class head.
const std::vector<Shape> kShapes = {
    {256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}, {2048, 2048, 2048},
    {128, 784, 256}, {64, 512, 2048}, {16, 150, 12800}, {6, 25, 100352},
    {256, 4096, 1024}, {128, 256, 10},
};

std::vector<float> random_matrix(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist;
  std::vector<float> x(size_t(rows * cols));
  for (float& v : x) v = dist(gen);
  return x;
}

// Elementwise bound of a k-term float32 dot product against the float64 reference:
// |c - ref| <= (k + 2) * eps * (|A| |B|).
bool validate(const Shape& s) {
  const auto a = random_matrix(s.m, s.k, 1), b = random_matrix(s.k, s.n, 2);
  std::vector<float> c(size_t(s.m * s.n));
  nnx::sgemm(nnx::Trans::N, nnx::Trans::N, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.n, 0.0f,
             c.data(), s.n);
  std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), ref(c.size()), mag(c.size());
  nnx::dgemm(nnx::Trans::N, nnx::Trans::N, s.m, s.n, s.k, 1.0, ad.data(), s.k, bd.data(), s.n, 0.0,
             ref.data(), s.n);
  for (double& v : ad) v = std::fabs(v);
  for (double& v : bd) v = std::fabs(v);
  nnx::dgemm(nnx::Trans::N, nnx::Trans::N, s.m, s.n, s.k, 1.0, ad.data(), s.k, bd.data(), s.n, 0.0,
             mag.data(), s.n);
  const double eps = 1.1920929e-07;
  for (size_t i = 0; i < c.size(); ++i) {
    if (!(std::fabs(c[i] - ref[i]) <= (s.k + 2) * eps * mag[i])) {
      std::fprintf(stderr, "gemm_bench: %lldx%lldx%lld is WRONG at element %zu: %g vs %g\n",
                   (long long)s.m, (long long)s.k, (long long)s.n, i, double(c[i]), ref[i]);
      return false;
    }
  }
  return true;
}

void BM_sgemm(benchmark::State& state) {
  const Shape s = kShapes[size_t(state.range(0))];
  const auto a = random_matrix(s.m, s.k, 1), b = random_matrix(s.k, s.n, 2);
  std::vector<float> c(size_t(s.m * s.n));
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    nnx::sgemm(nnx::Trans::N, nnx::Trans::N, s.m, s.n, s.k, 1.0f, a.data(), s.k, b.data(), s.n,
               0.0f, c.data(), s.n);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  const double gflops = flops * double(state.iterations()) / elapsed.count() / 1e9;
  state.counters["GFLOP/s"] = gflops;
  state.counters["%peak"] = 100.0 * gflops / g_peak_gflops;
  state.SetLabel(std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n) +
                 " " + nnx::isa_name(nnx::active_isa()) + " " +
                 std::to_string(nnx::get_num_threads()) + "t");
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (const Shape& s : kShapes)
    if (!validate(s)) return 1;
  g_peak_gflops = nnx::measure_fma_peak_gflops(nnx::get_num_threads(), 0.3);
  std::printf("validated %zu shapes against the float64 reference; ISA %s, %d thread(s), measured "
              "FMA peak %.1f GFLOP/s\n",
              kShapes.size(), nnx::isa_name(nnx::active_isa()), nnx::get_num_threads(),
              g_peak_gflops);
  for (size_t i = 0; i < kShapes.size(); ++i)
    benchmark::RegisterBenchmark("sgemm", BM_sgemm)->Arg(int64_t(i))->UseRealTime()->Unit(
        benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
