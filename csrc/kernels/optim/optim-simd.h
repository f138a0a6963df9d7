// Fused optimizer updates over a VecF32 type: included by f32-optim-<isa>.cpp. One pass reads
// param, grad and state and writes param and state; nothing else touches memory.
#pragma once

#include <cmath>

#include "optim/optim.h"
#include "simd/loops.h"

namespace nnx::kernels::simd {

template <class V>
void sgd_step(float* param, float* buf, const float* grad, int64_t n, const SgdParams& p,
              int threads) {
  using R = typename V::R;
  const R lr = V::set1(float(p.lr)), wd = V::set1(float(p.weight_decay)),
          mom = V::set1(float(p.momentum)), damp = V::set1(float(1 - p.dampening));
  parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
    for_vectors<V>(b, e, [&](int64_t i, int c) {
      const R w = load<V>(param + i, c);
      R g = V::fmadd(wd, w, load<V>(grad + i, c));
      if (p.momentum != 0) {
        const R m = p.first_step ? g : V::fmadd(mom, load<V>(buf + i, c), V::mul(damp, g));
        store<V>(buf + i, m, c);
        g = p.nesterov ? V::fmadd(mom, m, g) : m;
      }
      store<V>(param + i, V::fnmadd(lr, g, w), c);
    });
  });
}

template <class V>
void adam_step(float* param, float* m, float* v, const float* grad, int64_t n, const AdamParams& p,
               int threads) {
  using R = typename V::R;
  const R b1 = V::set1(float(p.beta1)), b2 = V::set1(float(p.beta2)),
          one_b1 = V::set1(float(1 - p.beta1)), one_b2 = V::set1(float(1 - p.beta2)),
          eps = V::set1(float(p.eps));
  const R l2 = V::set1(p.decoupled ? 0.0f : float(p.weight_decay));
  const R shrink = V::set1(p.decoupled ? float(1 - p.lr * p.weight_decay) : 1.0f);
  // param -= lr * (m / bc1) / (sqrt(v / bc2) + eps), with the divisions by bc folded into two
  // constants: step = lr / bc1, and sqrt(v / bc2) = sqrt(v) * rsqrt_bc2.
  const R step = V::set1(float(p.lr / p.bias_correction1));
  const R rsqrt_bc2 = V::set1(float(1.0 / std::sqrt(p.bias_correction2)));
  parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
    for_vectors<V>(b, e, [&](int64_t i, int c) {
      const R w = V::mul(shrink, load<V>(param + i, c));
      const R g = V::fmadd(l2, w, load<V>(grad + i, c));
      const R mv = V::fmadd(b1, load<V>(m + i, c), V::mul(one_b1, g));
      const R vv = V::fmadd(b2, load<V>(v + i, c), V::mul(one_b2, V::mul(g, g)));
      store<V>(m + i, mv, c);
      store<V>(v + i, vv, c);
      const R denom = V::fmadd(V::sqrt(vv), rsqrt_bc2, eps);
      store<V>(param + i, V::fnmadd(step, V::div(mv, denom), w), c);
    });
  });
}

template <class V>
double sum_squares(const float* x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kSquaresRun) {
    typename V::R acc = V::zero();
    for_vectors<V>(b, std::min(n, b + kSquaresRun), [&](int64_t i, int c) {
      const typename V::R v = load<V>(x + i, c);
      acc = V::fmadd(v, v, acc);
    });
    total += double(V::reduce_add(acc));
  }
  return total;
}

template <class V>
const OptimKernels& optim_table() {
  static const OptimKernels table = {&sgd_step<V>, &adam_step<V>, &sum_squares<V>};
  return table;
}

}  // namespace nnx::kernels::simd
