// Machine probes for benchmarks: how fast can this core retire FMAs at all? Benchmarks report
// kernel speed as a percentage of what these measure, not of a number from a data sheet.
#pragma once

#include <cstdint>

namespace nnx::kernels {

// Each runs `iters` rounds of independent FMA chains (enough of them to cover the FMA latency on
// every pipe) and returns the number of floating-point operations done (2 per lane per FMA).
namespace ref { int64_t f32_fma_probe(int64_t iters); }
namespace avx2 { int64_t f32_fma_probe(int64_t iters); }
namespace avx512 { int64_t f32_fma_probe(int64_t iters); }

}  // namespace nnx::kernels
