// Activations and softmax over a VecF32 type (simd/vec-<isa>.h): included by f32-act-<isa>.cpp,
// which instantiates them for its ISA. Same formulas as act-ref.cpp.
#pragma once

#include <cmath>

#include "act/act.h"
#include "simd/loops.h"
#include "simd/vmath.h"

namespace nnx::kernels::simd {

template <class V>
void act_forward(Act act, float* y, const float* x, int64_t n, float alpha, int threads) {
  using R = typename V::R;
  const R a = V::set1(alpha), zero = V::zero();
  switch (act) {
    case Act::sigmoid: return map<V>(y, n, threads, [](R v) { return sigmoid<V>(v); }, x);
    case Act::tanh: return map<V>(y, n, threads, [](R v) { return tanh<V>(v); }, x);
    case Act::relu: return map<V>(y, n, threads, [=](R v) { return V::max(zero, v); }, x);
    case Act::leaky_relu:
      return map<V>(y, n, threads, [=](R v) { return V::select(V::gt(v, zero), v, V::mul(a, v)); }, x);
    case Act::elu:
      return map<V>(y, n, threads,
                    [=](R v) { return V::select(V::gt(v, zero), v, V::mul(a, expm1<V>(V::min(zero, v)))); }, x);
    case Act::softplus:
      return map<V>(y, n, threads, [=](R v) {
        const R soft = V::add(V::max(zero, v), log1p<V>(exp<V>(V::sub(zero, V::abs(v)))));
        return V::select(V::gt(v, V::set1(20.0f)), v, soft);
      }, x);
    case Act::hardsigmoid:
      return map<V>(y, n, threads, [=](R v) {
        return V::mul(V::min(V::set1(6.0f), V::max(zero, V::add(v, V::set1(3.0f)))), V::set1(1.0f / 6));
      }, x);
  }
}

template <class V>
void act_backward(Act act, float* gx, const float* gy, const float* x, const float* y, int64_t n,
                  float alpha, int threads) {
  using R = typename V::R;
  const R a = V::set1(alpha), zero = V::zero(), one = V::set1(1.0f);
  switch (act) {
    case Act::sigmoid:
      return map<V>(gx, n, threads, [=](R g, R yv) { return V::mul(g, V::mul(yv, V::sub(one, yv))); }, gy, y);
    case Act::tanh:
      return map<V>(gx, n, threads, [=](R g, R yv) { return V::mul(g, V::fnmadd(yv, yv, one)); }, gy, y);
    case Act::relu:
      return map<V>(gx, n, threads, [=](R g, R xv) { return V::select(V::gt(xv, zero), g, zero); }, gy, x);
    case Act::leaky_relu:
      return map<V>(gx, n, threads, [=](R g, R xv) { return V::select(V::gt(xv, zero), g, V::mul(g, a)); }, gy, x);
    case Act::elu:
      return map<V>(gx, n, threads, [=](R g, R xv, R yv) {
        return V::select(V::gt(xv, zero), g, V::mul(g, V::add(yv, a)));
      }, gy, x, y);
    case Act::softplus:
      return map<V>(gx, n, threads, [=](R g, R xv) {
        return V::select(V::gt(xv, V::set1(20.0f)), g, V::mul(g, sigmoid<V>(xv)));
      }, gy, x);
    case Act::hardsigmoid:
      return map<V>(gx, n, threads, [=](R g, R xv) {
        const auto inside = V::both(V::gt(xv, V::set1(-3.0f)), V::lt(xv, V::set1(3.0f)));
        return V::select(inside, V::mul(g, V::set1(1.0f / 6)), zero);
      }, gy, x);
  }
}

template <class V>
void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, bool log, int threads) {
  using R = typename V::R;
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
  parallel_chunks(rows, rows_per_chunk, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      R vmax = V::set1(-INFINITY);
      for_vectors<V>(0, cols, [&](int64_t j, int c) { vmax = V::max(vmax, load<V>(xr + j, c, -INFINITY)); });
      const R mx = V::set1(V::reduce_max(vmax));
      R vsum = V::zero();
      for_vectors<V>(0, cols, [&](int64_t j, int c) {
        const R e = exp<V>(V::sub(load<V>(xr + j, c, -INFINITY), mx));
        vsum = V::add(vsum, e);
        if (!log) store<V>(yr + j, e, c);
      });
      const float sum = V::reduce_add(vsum);
      if (log) {
        const R shift = V::add(mx, V::set1(std::log(sum)));
        for_vectors<V>(0, cols, [&](int64_t j, int c) { store<V>(yr + j, V::sub(load<V>(xr + j, c), shift), c); });
      } else {
        const R inv = V::set1(1.0f / sum);
        for_vectors<V>(0, cols, [&](int64_t j, int c) { store<V>(yr + j, V::mul(load<V>(yr + j, c), inv), c); });
      }
    }
  });
}

template <class V>
void softmax_backward(float* gx, const float* gy, const float* y, int64_t rows, int64_t cols,
                      bool log, int threads) {
  using R = typename V::R;
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
  parallel_chunks(rows, rows_per_chunk, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = gy + r * cols;
      const float* yr = y + r * cols;
      float* out = gx + r * cols;
      R vs = V::zero();  // softmax: sum(g * y); log_softmax: sum(g)
      for_vectors<V>(0, cols, [&](int64_t j, int c) {
        const R gv = load<V>(g + j, c);
        vs = log ? V::add(vs, gv) : V::fmadd(gv, load<V>(yr + j, c), vs);
      });
      const R s = V::set1(V::reduce_add(vs));
      for_vectors<V>(0, cols, [&](int64_t j, int c) {
        const R gv = load<V>(g + j, c), yv = load<V>(yr + j, c);
        store<V>(out + j, log ? V::fnmadd(exp<V>(yv), s, gv) : V::mul(yv, V::sub(gv, s)), c);
      });
    }
  });
}

template <class V>
const ActKernels& act_table() {
  static const ActKernels table = {&act_forward<V>, &act_backward<V>, &softmax_forward<V>,
                                   &softmax_backward<V>};
  return table;
}

}  // namespace nnx::kernels::simd
