#include <immintrin.h>

#include "probe/probe.h"

namespace nnx::kernels::avx2 {

int64_t f32_fma_probe(int64_t iters) {
  constexpr int kChains = 12;  // 16 ymm registers: 12 chains + 2 constants
  __m256 acc[kChains];
#pragma GCC unroll 12
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(float(j));
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], x, y);
  }
  __m256 sum = acc[0];
#pragma GCC unroll 12
  for (int j = 1; j < kChains; ++j) sum = _mm256_add_ps(sum, acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  volatile float sink = lanes[0] + lanes[7];
  (void)sink;
  return iters * kChains * 8 * 2;
}

}  // namespace nnx::kernels::avx2
