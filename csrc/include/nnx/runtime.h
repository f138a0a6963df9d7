// Runtime services of nnx: instruction-set dispatch, threads and build information.
#pragma once

#include <string>

namespace nnx {

// Instruction-set levels with their own kernels, from the portable reference upwards.
enum class Isa : int { ref = 0, avx2 = 1, avx512 = 2 };

struct CpuFeatures {
  std::string vendor;
  std::string brand;
  bool sse42 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool os_saves_ymm = false, os_saves_zmm = false;  // XGETBV: the OS preserves the registers
  bool supports(Isa isa) const;
};

const CpuFeatures& cpu_features();

// The level whose kernels run. Chosen once, at first use: the best the CPU supports, or the level
// named by the environment variable NNX_ISA=ref|avx2|avx512 (std::runtime_error if that level is
// unknown or not supported by this CPU).
Isa active_isa();
// Switches every kernel table to `isa` (throws std::runtime_error if unsupported). Meant for tests
// and benchmarks; not safe while kernels run on other threads.
void set_isa(Isa isa);
const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // throws std::invalid_argument on an unknown name

// Threads used by nnx's parallel kernels. Starts at OpenMP's default (which honours
// OMP_NUM_THREADS), or 1 without OpenMP. n < 1 throws std::invalid_argument.
void set_num_threads(int n);
int get_num_threads();

// Best float32 FMA throughput of the active ISA over `seconds` of repeated probes, in GFLOP/s,
// with `num_threads` threads each running its own FMA chains. The yardstick of "% of peak".
double measure_fma_peak_gflops(int num_threads, double seconds = 0.2);

struct BuildInfo {
  std::string version;
  std::string build_type;
  std::string compiler;
  std::string openmp;  // e.g. "OpenMP 4.5 (libgomp)" or "none"
  bool native = false;
};
BuildInfo build_info();

}  // namespace nnx
