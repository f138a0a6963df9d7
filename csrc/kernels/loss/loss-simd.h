// Losses over a VecF32 type: included by f32-loss-<isa>.cpp. Same formulas as loss-ref.cpp.
#pragma once

#include <cmath>

#include "act/act-simd.h"
#include "loss/loss.h"
#include "simd/loops.h"
#include "simd/vmath.h"

namespace nnx::kernels::simd {

template <class V, class RowFn>
void for_rows(int64_t rows, int64_t cols, int threads, RowFn fn) {
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
  parallel_chunks(rows, rows_per_chunk, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(r);
  });
}

template <class V>
void cross_entropy_forward(float* loss, float* probs, const float* logits, const int64_t* index,
                           const float* prob, int64_t rows, int64_t cols, float smoothing,
                           int threads) {
  using R = typename V::R;
  // loss = lse * sum(q) - sum(q * x) with q = (1 - s) target + s / C; probs = exp(x - lse).
  for_rows<V>(rows, cols, threads, [&](int64_t r) {
    const float* x = logits + r * cols;
    float* p = probs + r * cols;
    R vmax = V::set1(-INFINITY);
    for_vectors<V>(0, cols, [&](int64_t j, int c) { vmax = V::max(vmax, load<V>(x + j, c, -INFINITY)); });
    const float mx = V::reduce_max(vmax);
    R vsum = V::zero(), vx = V::zero(), vqx = V::zero(), vq = V::zero();
    for_vectors<V>(0, cols, [&](int64_t j, int c) {
      const R xv = load<V>(x + j, c);
      vsum = V::add(vsum, exp<V>(V::sub(load<V>(x + j, c, -INFINITY), V::set1(mx))));
      vx = V::add(vx, xv);
      if (prob) {
        const R qv = load<V>(prob + r * cols + j, c);
        vqx = V::fmadd(qv, xv, vqx);
        vq = V::add(vq, qv);
      }
    });
    const float lse = mx + std::log(V::reduce_add(vsum));
    const float sum_x = V::reduce_add(vx);
    const float q_x = prob ? V::reduce_add(vqx) : x[index[r]];
    const float q_sum = prob ? V::reduce_add(vq) : 1.0f;
    loss[r] = (1 - smoothing) * (lse * q_sum - q_x) + smoothing * (lse - sum_x / float(cols));
    const R shift = V::set1(lse);
    for_vectors<V>(0, cols, [&](int64_t j, int c) { store<V>(p + j, exp<V>(V::sub(load<V>(x + j, c), shift)), c); });
  });
}

template <class V>
void cross_entropy_backward(float* grad, const float* grad_loss, const float* probs,
                            const int64_t* index, const float* prob, int64_t rows, int64_t cols,
                            float smoothing, int threads) {
  using R = typename V::R;
  for_rows<V>(rows, cols, threads, [&](int64_t r) {
    const float* p = probs + r * cols;
    float* g = grad + r * cols;
    const R gl = V::set1(grad_loss[r]);
    const R uniform = V::set1(smoothing / float(cols)), keep = V::set1(1 - smoothing);
    for_vectors<V>(0, cols, [&](int64_t j, int c) {
      R q = uniform;
      if (prob) q = V::fmadd(keep, load<V>(prob + r * cols + j, c), q);
      store<V>(g + j, V::mul(gl, V::sub(load<V>(p + j, c), q)), c);
    });
    if (!prob) g[index[r]] -= grad_loss[r] * (1 - smoothing);
  });
}

template <class V>
void point_forward(PointLoss kind, float* loss, const float* input, const float* target, int64_t n,
                   int threads) {
  using R = typename V::R;
  const R zero = V::zero();
  switch (kind) {
    case PointLoss::mse:
      return map<V>(loss, n, threads, [](R x, R t) { const R d = V::sub(x, t); return V::mul(d, d); }, input, target);
    case PointLoss::l1:
      return map<V>(loss, n, threads, [](R x, R t) { return V::abs(V::sub(x, t)); }, input, target);
    case PointLoss::bce_with_logits:
      return map<V>(loss, n, threads, [=](R x, R t) {
        const R soft = log1p<V>(exp<V>(V::sub(zero, V::abs(x))));
        return V::add(V::fnmadd(x, t, V::max(zero, x)), soft);
      }, input, target);
  }
}

template <class V>
void point_backward(PointLoss kind, float* grad_input, const float* grad, const float* input,
                    const float* target, int64_t n, int threads) {
  using R = typename V::R;
  const R zero = V::zero(), one = V::set1(1.0f);
  switch (kind) {
    case PointLoss::mse:
      return map<V>(grad_input, n, threads, [](R g, R x, R t) {
        return V::mul(g, V::mul(V::set1(2.0f), V::sub(x, t)));
      }, grad, input, target);
    case PointLoss::l1:
      return map<V>(grad_input, n, threads, [=](R g, R x, R t) {
        const R sign = V::select(V::gt(x, t), one, V::select(V::lt(x, t), V::sub(zero, one), zero));
        return V::mul(g, sign);
      }, grad, input, target);
    case PointLoss::bce_with_logits:
      return map<V>(grad_input, n, threads, [](R g, R x, R t) {
        return V::mul(g, V::sub(sigmoid<V>(x), t));
      }, grad, input, target);
  }
}

template <class V>
void hinge_forward(float* loss, const float* scores, const int64_t* target, int64_t rows,
                   int64_t cols, float margin, int threads) {
  using R = typename V::R;
  for_rows<V>(rows, cols, threads, [&](int64_t r) {
    const float* s = scores + r * cols;
    const R shift = V::set1(margin - s[target[r]]);
    R acc = V::zero();
    // Padding lanes load -inf, so their term max(0, -inf) is 0.
    for_vectors<V>(0, cols, [&](int64_t j, int c) {
      acc = V::add(acc, V::max(V::zero(), V::add(load<V>(s + j, c, -INFINITY), shift)));
    });
    // The j = y term is max(0, margin) exactly (s_y - s_y = 0): take it back out.
    loss[r] = V::reduce_add(acc) - std::max(0.0f, margin);
  });
}

template <class V>
void hinge_backward(float* grad, const float* grad_loss, const float* scores, const int64_t* target,
                    int64_t rows, int64_t cols, float margin, int threads) {
  using R = typename V::R;
  for_rows<V>(rows, cols, threads, [&](int64_t r) {
    const float* s = scores + r * cols;
    float* g = grad + r * cols;
    const R shift = V::set1(margin - s[target[r]]), gl = V::set1(grad_loss[r]);
    R count = V::zero();
    for_vectors<V>(0, cols, [&](int64_t j, int c) {
      const R active = V::select(V::gt(V::add(load<V>(s + j, c, -INFINITY), shift), V::zero()),
                                 V::set1(1.0f), V::zero());
      count = V::add(count, active);
      store<V>(g + j, V::mul(gl, active), c);
    });
    const float others = V::reduce_add(count) - (margin > 0 ? 1.0f : 0.0f);
    g[target[r]] = -grad_loss[r] * others;
  });
}

template <class V>
const LossKernels& loss_table() {
  static const LossKernels table = {&cross_entropy_forward<V>, &cross_entropy_backward<V>,
                                    &point_forward<V>, &point_backward<V>, &hinge_forward<V>,
                                    &hinge_backward<V>};
  return table;
}

}  // namespace nnx::kernels::simd
