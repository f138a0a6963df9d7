#include <immintrin.h>

#include "probe/probe.h"

namespace nnx::kernels::avx512 {

int64_t f32_fma_probe(int64_t iters) {
  constexpr int kChains = 24;  // 2 pipes x 4 cycles latency = 8 needed; 24 leaves slack
  __m512 acc[kChains];
#pragma GCC unroll 24
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(float(j));
  // acc = acc * x + y converges to y / (1 - x): values stay normal, nothing overflows.
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], x, y);
  }
  __m512 sum = acc[0];
#pragma GCC unroll 24
  for (int j = 1; j < kChains; ++j) sum = _mm512_add_ps(sum, acc[j]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  volatile float sink = lanes[0] + lanes[15];  // keeps the loop alive
  (void)sink;
  return iters * kChains * 16 * 2;
}

}  // namespace nnx::kernels::avx512
