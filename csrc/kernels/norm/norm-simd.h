// Batch normalisation over a VecF32 type: included by f32-norm-<isa>.cpp. Each channel's values
// come in N runs of M contiguous floats; sums run lane-wise along each run, in a fixed order.
#pragma once

#include <cmath>

#include "norm/norm.h"
#include "simd/loops.h"

namespace nnx::kernels::simd {

// Whole channels per parallel chunk, about kChunk values each, so that small layers stay on one
// thread.
inline int64_t channels_per_chunk(const NormGeometry& g) {
  return std::max<int64_t>(1, kChunk / std::max<int64_t>(g.n * g.m, 1));
}

// Calls f(pointer to run, run index n) for the N runs of channel c, in order.
template <class F>
void for_runs(const NormGeometry& g, int64_t c, F f) {
  for (int64_t n = 0; n < g.n; ++n) f((n * g.c + c) * g.m);
}

template <class V>
void bn_forward_train(float* y, float* mean, float* invstd, const float* x, const float* gamma,
                      const float* beta, const NormGeometry& g, float eps, int threads) {
  using R = typename V::R;
  const float count = float(g.n * g.m);
  parallel_chunks(g.c, channels_per_chunk(g), threads, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      R acc = V::zero();
      for_runs(g, c, [&](int64_t off) {
        for_vectors<V>(0, g.m, [&](int64_t i, int n) { acc = V::add(acc, load<V>(x + off + i, n)); });
      });
      const float mu = V::reduce_add(acc) / count;
      const R vmu = V::set1(mu);
      R sq = V::zero();  // two passes: the variance of the deviations
      for_runs(g, c, [&](int64_t off) {
        for_vectors<V>(0, g.m, [&](int64_t i, int n) {
          // Padding lanes load mu, so they add 0.
          const R d = V::sub(load<V>(x + off + i, n, mu), vmu);
          sq = V::fmadd(d, d, sq);
        });
      });
      const float is = 1.0f / std::sqrt(V::reduce_add(sq) / count + eps);
      mean[c] = mu;
      invstd[c] = is;
      const R scale = V::set1(is * (gamma ? gamma[c] : 1.0f)), shift = V::set1(beta ? beta[c] : 0.0f);
      for_runs(g, c, [&](int64_t off) {
        for_vectors<V>(0, g.m, [&](int64_t i, int n) {
          store<V>(y + off + i, V::fmadd(V::sub(load<V>(x + off + i, n), vmu), scale, shift), n);
        });
      });
    }
  });
}

template <class V>
void bn_scale_shift(float* y, const float* x, const float* scale, const float* shift,
                    const NormGeometry& g, int threads) {
  parallel_chunks(g.n * g.c, std::max<int64_t>(1, kChunk / std::max<int64_t>(g.m, 1)), threads,
                  [&](int64_t r0, int64_t r1) {
    for (int64_t nc = r0; nc < r1; ++nc) {
      const int64_t c = nc % g.c;
      const typename V::R s = V::set1(scale[c]), t = V::set1(shift[c]);
      for_vectors<V>(0, g.m, [&](int64_t i, int n) {
        store<V>(y + nc * g.m + i, V::fmadd(load<V>(x + nc * g.m + i, n), s, t), n);
      });
    }
  });
}

template <class V>
void bn_backward(float* grad_x, float* grad_gamma, float* grad_beta, const float* grad_y,
                 const float* x, const float* gamma, const float* mean, const float* invstd,
                 const NormGeometry& g, int threads) {
  using R = typename V::R;
  const float count = float(g.n * g.m);
  parallel_chunks(g.c, channels_per_chunk(g), threads, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const R mu = V::set1(mean[c]), is = V::set1(invstd[c]);
      R acc_g = V::zero(), acc_gx = V::zero();
      for_runs(g, c, [&](int64_t off) {
        for_vectors<V>(0, g.m, [&](int64_t i, int n) {
          const R gv = load<V>(grad_y + off + i, n);
          const R xhat = V::mul(V::sub(load<V>(x + off + i, n, mean[c]), mu), is);
          acc_g = V::add(acc_g, gv);
          acc_gx = V::fmadd(gv, xhat, acc_gx);
        });
      });
      const float sum_g = V::reduce_add(acc_g), sum_gx = V::reduce_add(acc_gx);
      if (grad_gamma) grad_gamma[c] = sum_gx;
      if (grad_beta) grad_beta[c] = sum_g;
      if (!grad_x) continue;
      const R factor = V::set1((gamma ? gamma[c] : 1.0f) * invstd[c] / count);
      const R vcount = V::set1(count), vsum_g = V::set1(sum_g), vsum_gx = V::set1(sum_gx);
      for_runs(g, c, [&](int64_t off) {
        for_vectors<V>(0, g.m, [&](int64_t i, int n) {
          const R xhat = V::mul(V::sub(load<V>(x + off + i, n), mu), is);
          const R inner = V::fnmadd(xhat, vsum_gx, V::fmadd(vcount, load<V>(grad_y + off + i, n), V::sub(V::zero(), vsum_g)));
          store<V>(grad_x + off + i, V::mul(factor, inner), n);
        });
      });
    }
  });
}

template <class V>
const NormKernels& norm_table() {
  static const NormKernels table = {&bn_forward_train<V>, &bn_scale_shift<V>, &bn_backward<V>};
  return table;
}

}  // namespace nnx::kernels::simd
