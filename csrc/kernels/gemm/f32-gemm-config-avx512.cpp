// AVX-512 blocking for SGEMM, chosen by a sweep on Zen 5 (48 KiB L1d, 1 MiB L2 per core, 32 MiB
// L3) of kc in 256..2048, mc in 42..336, nc in 512..4096, scored by speed relative to numpy in the
// same process (the machine is shared; ratios survive its noise, absolute times do not).
// A deep kc wins: it halves the passes over C, and Zen 5's L2 streams both the A micro-panel
// (14 x 1024 floats, 56 KiB) and the B micro-panel (1024 x 32 floats, 128 KiB) fast enough to
// keep both FMA pipes busy. The A block (84 x 1024, 336 KiB) stays in L2, the B panel
// (1024 x 1024, 4 MiB) in L3.
#include <immintrin.h>

#include <algorithm>

#include "gemm/gemm.h"
#include "gemm/pack.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

void f32_gemm_ukernel_14x32__avx512(const SgemmTile& t);

namespace {

// Panels of MR rows when the rows are contiguous (cs == 1: op(A) = A, or op(B) = B^T). The
// generic loop moves one float at a time with a stride-MR scatter; here 16 columns of up to 16
// rows are loaded, transposed in registers and stored as 16 runs of floats. A is repacked for
// every nc block, so this is most of the packing time of a large GEMM (measured 0.20 -> 0.08 ns
// per float for A; 0.09 -> 0.03 ms per 1024 x 342 block of B^T).
template <int MR>
void pack_columns(float* dst, const float* x, int64_t cs, int64_t m, int64_t k);

template <int MR>
void pack_rows_transposed(float* dst, const float* x, int64_t rs, int64_t cs, int64_t m, int64_t k) {
  const int64_t full = m / MR * MR;
  if (cs != 1) return pack_columns<MR>(dst, x, cs, m, k);
  for (int64_t r0 = 0; r0 < full; r0 += MR, dst += MR * k) {
    for (int g = 0; g < MR; g += 16) {  // groups of 16 rows
      const int rows = MR - g < 16 ? MR - g : 16;
      const __mmask16 out = rows == 16 ? __mmask16(0xFFFF) : __mmask16((1u << rows) - 1);
      const float* src = x + (r0 + g) * rs;
      for (int64_t p = 0; p < k; p += 16) {
        const int cols = k - p < 16 ? int(k - p) : 16;
        const __mmask16 in = cols == 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
        __m512 r[16];
        for (int i = 0; i < 16; ++i)
          r[i] = i < rows ? _mm512_maskz_loadu_ps(in, src + i * rs + p) : _mm512_setzero_ps();
        VecF32::transpose(r);
        for (int j = 0; j < cols; ++j) _mm512_mask_storeu_ps(dst + (p + j) * MR + g, out, r[j]);
      }
    }
  }
  if (full < m) pack_panels<MR>(dst, x + full * rs, rs, cs, m - full, k);
}

// Panels of MR rows when the columns are contiguous (rs == 1: op(A) = A^T, e.g. the gradient
// GEMMs of a recurrent layer). Column p is a run of m floats; each panel's MR of them move as one
// or two masked 16-lane copies, the lanes past m loading zeros, where the generic loop moved 14
// floats one at a time (measured 2-3x slower).
template <int MR>
void pack_columns(float* dst, const float* x, int64_t cs, int64_t m, int64_t k) {
  const int64_t panels = (m + MR - 1) / MR;
  for (int64_t p = 0; p < k; ++p) {
    const float* src = x + p * cs;
    for (int64_t r = 0; r < panels; ++r) {
      const int64_t rows = std::min<int64_t>(MR, m - r * MR);
      float* out = dst + r * MR * k + p * MR;
      for (int g = 0; g < MR; g += 16) {
        const int width = MR - g < 16 ? MR - g : 16;
        const int64_t valid = std::max<int64_t>(0, std::min<int64_t>(width, rows - g));
        const __mmask16 in = __mmask16((1u << valid) - 1), all = __mmask16((1u << width) - 1);
        _mm512_mask_storeu_ps(out + g, all, _mm512_maskz_loadu_ps(in, src + r * MR + g));
      }
    }
  }
}

}  // namespace

const SgemmConfig& sgemm_config() {
  static const SgemmConfig config = {
      "f32_gemm_ukernel_14x32__avx512", 14, 32, 1024, 14 * 6, 32 * 32,
      &f32_gemm_ukernel_14x32__avx512, &pack_rows_transposed<14>,
      &pack_rows_transposed<32>,
  };
  return config;
}

}  // namespace nnx::kernels::avx512
