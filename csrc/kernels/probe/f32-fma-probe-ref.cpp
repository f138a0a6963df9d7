#include <cmath>

#include "probe/probe.h"

namespace nnx::kernels::ref {

int64_t f32_fma_probe(int64_t iters) {
  constexpr int kChains = 8;
  float acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = float(j);
  for (int64_t it = 0; it < iters; ++it)
    for (int j = 0; j < kChains; ++j) acc[j] = std::fma(acc[j], 0.999f, 0.001f);
  float sum = 0;
  for (int j = 0; j < kChains; ++j) sum += acc[j];
  volatile float sink = sum;
  (void)sink;
  return iters * kChains * 2;
}

}  // namespace nnx::kernels::ref
