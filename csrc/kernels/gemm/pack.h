// Packing routines shared by every ISA: each ISA's config file instantiates them, so that they are
// compiled (and auto-vectorised) with that ISA's flags.
#pragma once

#include <cstdint>

namespace nnx::kernels {

// See PackFn in gemm.h. Two loop orders, one per memory layout, so that the inner loop always
// walks memory with unit stride on one side.
template <int MR>
void pack_panels(float* __restrict dst, const float* __restrict x, int64_t rs, int64_t cs, int64_t m,
                 int64_t k) {
  const int64_t full = m / MR * MR;
  if (cs == 1) {
    // Rows are contiguous: read each row once along p, scatter into its panel with stride MR.
    for (int64_t i = 0; i < m; ++i) {
      const float* src = x + i * rs;
      float* out = dst + i / MR * MR * k + i % MR;
      for (int64_t p = 0; p < k; ++p) out[p * MR] = src[p];
    }
  } else {
    // Columns are contiguous (rs == 1): walk memory in order of p, one stretch of m floats at a
    // time, and copy MR of them into each panel. Reading panel by panel instead would touch k
    // distant lines per panel, which is what the hardware prefetcher handles worst.
    for (int64_t p = 0; p < k; ++p) {
      const float* src = x + p * cs;
      for (int64_t r0 = 0; r0 < full; r0 += MR)
        for (int64_t i = 0; i < MR; ++i) dst[r0 * k + p * MR + i] = src[r0 + i];
      for (int64_t i = full; i < m; ++i) dst[full * k + p * MR + i - full] = src[i];
    }
  }
  if (full < m) {  // zero the rows of the last panel past m
    float* last = dst + full * k;
    for (int64_t p = 0; p < k; ++p)
      for (int64_t i = m - full; i < MR; ++i) last[p * MR + i] = 0.0f;
  }
}

}  // namespace nnx::kernels
