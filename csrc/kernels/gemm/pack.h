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
  for (int64_t r0 = 0; r0 < m; r0 += MR, dst += MR * k) {
    const int64_t rows = m - r0 < MR ? m - r0 : MR;
    const float* xr = x + r0 * rs;
    if (cs == 1) {
      // Rows are contiguous: read each row once along p, scatter into the panel with stride MR.
      for (int64_t i = 0; i < rows; ++i) {
        const float* src = xr + i * rs;
        for (int64_t p = 0; p < k; ++p) dst[p * MR + i] = src[p];
      }
    } else {
      // Columns are contiguous (rs == 1): each panel column is a straight copy.
      for (int64_t p = 0; p < k; ++p) {
        const float* src = xr + p * cs;
        for (int64_t i = 0; i < rows; ++i) dst[p * MR + i] = src[i * rs];
      }
    }
    if (rows < MR) {
      for (int64_t p = 0; p < k; ++p)
        for (int64_t i = rows; i < MR; ++i) dst[p * MR + i] = 0.0f;
    }
  }
}

}  // namespace nnx::kernels
