// What every native benchmark binary shares: reading the shape files, random inputs in aligned
// buffers, checking a float result against the double-precision reference (a mismatch ends the
// process with exit status 1 before anything is timed), the two yardsticks (the FMA peak and a
// STREAM-triad probe of memory bandwidth), the timing loop with its counters, and main().
//
// Shape files (bench/shapes/*.txt): one call per line, `kind name numbers... [flags...]`, `#`
// starts a comment. The file's stem names the model (lenet5, resnet18, char_lstm); bench/README.md
// lists each kind's fields.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "nnx/runtime.h"

#ifndef NNX_BENCH_SHAPES_DIR
#define NNX_BENCH_SHAPES_DIR "bench/shapes"
#endif

namespace nnxbench {

// ---- failing loudly -------------------------------------------------------------------------

[[noreturn]] inline void fail(const std::string& message) {
  std::fprintf(stderr, "FAILED: %s\n", message.c_str());
  std::fflush(stderr);
  std::exit(1);
}

// ---- aligned buffers ------------------------------------------------------------------------

// 64-byte aligned, as the arrays nnx allocates for Python: malloc's large blocks start 16 bytes
// past a page, and an AVX-512 kernel fed those straddles two cache lines on every access.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
template <class T>
using Buffer = std::vector<T, AlignedAllocator<T>>;

// Uniform values in [-scale, scale) from a xorshift generator: cheap enough to fill the hundreds
// of megabytes of a ResNet-18 optimizer step, and the same on every run.
inline Buffer<float> uniform(size_t n, uint64_t seed, float scale = 1.0f) {
  Buffer<float> x(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& v : x) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    v = scale * (float(s >> 40) * (2.0f / 16777216.0f) - 1.0f);
  }
  return x;
}

inline Buffer<double> widen(const Buffer<float>& x) { return Buffer<double>(x.begin(), x.end()); }

// ---- checks against the reference ------------------------------------------------------------

// |got - want| <= atol + rtol |want| for every element: for results that are not plain sums of
// products (transcendental functions, recurrences, optimizer updates).
inline void check_close(const std::string& what, const float* got, const double* want, size_t n,
                        double rtol, double atol) {
  for (size_t i = 0; i < n; ++i) {
    const double bound = atol + rtol * std::fabs(want[i]);
    if (!(std::fabs(double(got[i]) - want[i]) <= bound))
      fail(what + ": element " + std::to_string(i) + " is " + std::to_string(got[i]) +
           ", the reference says " + std::to_string(want[i]) + " (allowed error " +
           std::to_string(bound) + ")");
  }
}

// Within `relative` of the largest reference value, element by element: for sums of many products
// (GEMM, convolution, LSTM). Float's rounding error grows with the size of the terms summed, not
// with the (often cancelling) result, so a per-element relative test would fail on correct code;
// the classical worst-case bound (terms x eps) is useless for the 50,000-term sums of a weight
// gradient, where it exceeds the result itself. At the shapes of bench/shapes, the largest error
// float accumulates is under 1.5% of 1e-4 of the largest value; a wrong index, a missing row or
// a stale buffer is far above it.
inline void check_near(const std::string& what, const float* got, const double* want, size_t n,
                       double relative = 1e-4) {
  double largest = 0;
  for (size_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(want[i]));
  check_close(what, got, want, n, 0.0, relative * largest);
}

template <class T>
void check_equal(const std::string& what, const T* got, const T* want, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!(got[i] == want[i]))
      fail(what + ": element " + std::to_string(i) + " is " + std::to_string(got[i]) +
           ", the reference says " + std::to_string(want[i]));
}

// ---- shape files ------------------------------------------------------------------------------

struct Shape {
  std::string model;              // the file's stem: lenet5, resnet18, char_lstm, square
  std::string kind;               // first field: gemm, conv, pool, act, softmax, xent, lstm, ...
  std::string name;               // second field: the layer, e.g. conv1
  std::vector<std::string> args;  // the rest: numbers, then flags
  std::string where;              // "bench/shapes/lenet5.txt:12", for messages

  // The benchmark's name (before any /fwd, /bwd): kind/model/name, e.g. conv/lenet5/conv1.
  std::string id() const { return kind + "/" + model + "/" + name; }
  bool has(const std::string& flag) const { return std::count(args.begin(), args.end(), flag) > 0; }

  // The first `numbers` fields as integers >= 0 (the nnx calls reject sizes of 0 where they
  // must), after checking that the line has exactly
  // that many numbers followed only by flags from `flags`.
  std::vector<int64_t> numbers(size_t numbers, const std::vector<std::string>& flags = {}) const {
    if (args.size() < numbers)
      fail(where + ": `" + kind + "` needs " + std::to_string(numbers) + " numbers, got " +
           std::to_string(args.size()));
    std::vector<int64_t> out;
    for (size_t i = 0; i < numbers; ++i) out.push_back(integer(args[i]));
    for (size_t i = numbers; i < args.size(); ++i)
      if (std::find(flags.begin(), flags.end(), args[i]) == flags.end())
        fail(where + ": unexpected field `" + args[i] + "` for `" + kind + "`");
    return out;
  }

  int64_t integer(const std::string& text) const {
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < 0)
      fail(where + ": expected an integer >= 0, got `" + text + "`");
    return v;
  }
};

// Set by main(): the files given with --shapes=a.txt,b.txt, else every .txt in bench/shapes.
inline std::vector<std::string>& shape_files() {
  static std::vector<std::string> files;
  return files;
}

inline std::vector<Shape> read_shape_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read the shape file " + path);
  std::vector<Shape> shapes;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream fields(line.substr(0, line.find('#')));
    Shape s;
    if (!(fields >> s.kind)) continue;  // blank or comment
    s.model = std::filesystem::path(path).stem().string();
    s.where = path + ":" + std::to_string(number);
    if (!(fields >> s.name)) fail(s.where + ": a line is `kind name fields...`");
    for (std::string f; fields >> f;) s.args.push_back(f);
    shapes.push_back(s);
  }
  return shapes;
}

// Every line of the shape files whose kind is one of `kinds`, in file order.
inline std::vector<Shape> load_shapes(const std::vector<std::string>& kinds) {
  std::vector<Shape> out;
  for (const std::string& file : shape_files())
    for (const Shape& s : read_shape_file(file))
      if (std::find(kinds.begin(), kinds.end(), s.kind) != kinds.end()) out.push_back(s);
  return out;
}

// Runs `body` (which validates a line's calls and registers their benchmarks, returning how many)
// on every line of the given kinds; an error names the line it came from.
template <class F>
int for_each_shape(const std::vector<std::string>& kinds, F&& body) {
  int count = 0;
  for (const Shape& s : load_shapes(kinds)) {
    try {
      count += body(s);
    } catch (const std::exception& e) {
      fail(s.where + ": " + e.what());
    }
  }
  return count;
}

// ---- yardsticks -------------------------------------------------------------------------------

enum class Bound { compute, memory };  // reported as GFLOP/s vs the FMA peak, or GB/s vs STREAM

struct Yardstick {
  double fma_gflops = 0;  // nnx::measure_fma_peak_gflops on the active ISA
  double stream_gbs = 0;  // stream_triad_gbs below
};
inline Yardstick& yardstick() {
  static Yardstick y;
  return y;
}

// A STREAM-triad-like probe: a[i] = b[i] + s c[i] over three arrays of 64 MiB (far beyond the
// last-level cache), parallel over the same thread count as nnx, best of `repeats` passes.
// Bandwidth counts 12 bytes per element (two reads, one write; no write-allocate traffic), the
// convention STREAM uses and the one the memory-bound benchmarks use for their own bytes.
inline double stream_triad_gbs(int repeats) {
  const int64_t n = int64_t(16) << 20;
  Buffer<float> a(size_t(n), 0.0f), b(size_t(n), 1.0f), c(size_t(n), 2.0f);
  float* pa = a.data();
  const float *pb = b.data(), *pc = c.data();
  const float s = 3.0f;
  const int threads = nnx::get_num_threads();
  (void)threads;  // unused without OpenMP
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    benchmark::ClobberMemory();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  benchmark::DoNotOptimize(a.data());
  return 12.0 * double(n) / best / 1e9;
}

// ---- timing -----------------------------------------------------------------------------------

// Runs `call` in the benchmark loop and reports its rate against the yardstick: GFLOP/s and %FMA
// for Bound::compute (`work` = FLOP per call), GB/s and %STREAM for Bound::memory (`work` = bytes
// per call). Wall-clock time, as the calls are multi-threaded.
template <class F>
void time_calls(benchmark::State& state, Bound bound, double work, F&& call) {
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = work * double(state.iterations()) / seconds / 1e9;
  if (bound == Bound::compute) {
    state.counters["GFLOP/s"] = rate;
    state.counters["%FMA"] = 100.0 * rate / yardstick().fma_gflops;
  } else {
    state.counters["GB/s"] = rate;
    state.counters["%STREAM"] = 100.0 * rate / yardstick().stream_gbs;
  }
}

// Registers a benchmark timing `call` (no arguments), labelled with the call's shape.
template <class F>
void add(const std::string& name, const std::string& label, Bound bound, double work, F call) {
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
    time_calls(state, bound, work, call);
    state.SetLabel(label);
  })->UseRealTime()->Unit(benchmark::kMicrosecond);
}

// ---- main -------------------------------------------------------------------------------------

// The main() of every binary. Own flags (removed before Google Benchmark sees the rest):
//   --short          or NNX_BENCH_SHORT=1: a few milliseconds per benchmark (CI), short probes
//   --shapes=a,b     shape files to read instead of every .txt in bench/shapes
// `setup` reads the shapes, validates every call against the reference and registers the
// benchmarks; it runs before any timing.
inline int main(int argc, char** argv, const char* family, Bound bound,
                const std::function<int()>& setup) {
  std::vector<char*> args{argv[0]};
  const char* env_short = std::getenv("NNX_BENCH_SHORT");
  bool short_mode = env_short && *env_short && std::strcmp(env_short, "0") != 0;
  std::string shapes_flag;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0) short_mode = true;
    else if (std::strncmp(argv[i], "--shapes=", 9) == 0) shapes_flag = argv[i] + 9;
    else args.push_back(argv[i]);
  }
  // Before the user's own flags, so that an explicit --benchmark_min_time still wins.
  static char short_time[] = "--benchmark_min_time=0.002";
  if (short_mode) args.insert(args.begin() + 1, short_time);
  int count = int(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;

  if (!shapes_flag.empty()) {
    std::stringstream list(shapes_flag);
    for (std::string f; std::getline(list, f, ',');) shape_files().push_back(f);
  } else {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(NNX_BENCH_SHAPES_DIR, error))
      if (entry.path().extension() == ".txt") shape_files().push_back(entry.path().string());
    if (error || shape_files().empty())
      fail(std::string("no shape files in ") + NNX_BENCH_SHAPES_DIR + " (use --shapes=FILE,...)");
    std::sort(shape_files().begin(), shape_files().end());
  }

  int validated = 0;
  try {
    validated = setup();
  } catch (const std::exception& e) {
    fail(std::string(family) + ": " + e.what());
  }
  if (bound == Bound::compute)
    yardstick().fma_gflops = nnx::measure_fma_peak_gflops(nnx::get_num_threads(), short_mode ? 0.02 : 0.3);
  else
    yardstick().stream_gbs = stream_triad_gbs(short_mode ? 3 : 20);

  const std::string isa = nnx::isa_name(nnx::active_isa());
  const std::string threads = std::to_string(nnx::get_num_threads());
  char yard[96];
  if (bound == Bound::compute)
    std::snprintf(yard, sizeof yard, "FMA peak %.1f GFLOP/s", yardstick().fma_gflops);
  else
    std::snprintf(yard, sizeof yard, "STREAM triad %.1f GB/s", yardstick().stream_gbs);
  benchmark::AddCustomContext("nnx_isa", isa);
  benchmark::AddCustomContext("nnx_threads", threads);
  benchmark::AddCustomContext("nnx_yardstick", yard);
  std::printf("%s: %d call(s) validated against the double-precision reference; ISA %s, %s "
              "thread(s), %s%s\n",
              family, validated, isa.c_str(), threads.c_str(), yard, short_mode ? ", short mode" : "");
  std::fflush(stdout);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace nnxbench
