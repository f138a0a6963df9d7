// Max pooling over a VecF32 type, vectorised across output columns: included by
// f32-pool-<isa>.cpp. Same results, bit for bit, as max_pool_forward in pool-ref.cpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>

#include "pool/pool.h"
#include "simd/loops.h"

namespace nnx::kernels::simd {

// Lane l = p[l * stride] for l in [lo, hi), `fill` elsewhere; other lanes are never read.
template <class V>
typename V::R load_strided(const float* p, int64_t stride, int lo, int hi, float fill) {
  if (lo >= hi) return V::set1(fill);
  if (stride == 1) return V::load_lanes(p, lo, hi, fill);
  if (stride == 2) {  // two vector loads of the elements [2 lo, 2 hi - 1), then the even lanes
    constexpr int W = V::kWidth;
    const int e0 = 2 * lo, e1 = 2 * hi - 1;
    const typename V::R a = e0 < W ? V::load_lanes(p, e0, std::min(e1, W), fill) : V::set1(fill);
    const typename V::R b = e1 > W ? V::load_lanes(p + W, std::max(e0 - W, 0), e1 - W, fill)
                                   : V::set1(fill);
    return V::even_lanes(a, b);
  }
  alignas(64) float buf[V::kWidth];
  for (int l = 0; l < V::kWidth; ++l) buf[l] = l >= lo && l < hi ? p[l * stride] : fill;
  return V::load(buf);
}

// Output columns j0 .. j0 + lanes - 1 of output row i of one plane.
template <class V>
void max_pool_row_block(float* y, int64_t* indices, const float* xp, const PoolGeometry& g,
                        int64_t i, int64_t j0, int lanes) {
  using R = typename V::R;
  const R lane_col = V::mul(V::iota(), V::set1(float(g.sw)));  // column offset of each lane
  // Start like the reference: -inf at the clipped window origin, so padding never wins.
  const int64_t h_start = std::max<int64_t>(i * g.sh - g.ph, 0);
  const R origin_col = V::max(V::zero(), V::add(V::set1(float(j0 * g.sw - g.pw)), lane_col));
  R best = V::set1(-INFINITY);
  R arg = V::add(V::set1(float(h_start * g.w)), origin_col);
  // Only the taps that reach the input: a huge, mostly padded window costs what its overlap does.
  const int64_t top = i * g.sh - g.ph, left = j0 * g.sw - g.pw;
  const int64_t a0 = std::max<int64_t>(0, -top), a1 = std::min(g.kh, g.h - top);
  const int64_t b0 = std::max<int64_t>(0, -left - (lanes - 1) * g.sw), b1 = std::min(g.kw, g.w - left);
  for (int64_t a = a0; a < a1; ++a) {
    const int64_t h = top + a;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t w0 = j0 * g.sw - g.pw + b;  // input column of lane 0
      // Lanes whose column w0 + l * sw lies inside [0, W): all of them without padding.
      int lo_l = 0, hi_l = lanes;
      if (g.pw != 0) {
        const int64_t lo = w0 < 0 ? (-w0 + g.sw - 1) / g.sw : 0;
        const int64_t hi = w0 > g.w - 1 ? 0 : (g.w - 1 - w0) / g.sw + 1;
        lo_l = int(std::min<int64_t>(lo, lanes)), hi_l = int(std::clamp<int64_t>(hi, lo_l, lanes));
      }
      const R val = load_strided<V>(xp + h * g.w + w0, g.sw, lo_l, hi_l, -INFINITY);
      const R pos = V::add(V::set1(float(h * g.w + w0)), lane_col);
      const auto take = V::either(V::gt(val, best), V::both(V::is_nan(val), V::not_nan(best)));
      best = V::select(take, val, best);
      arg = V::select(take, pos, arg);
    }
  }
  store<V>(y, best, lanes);
  V::store_as_int64(indices, arg, lanes);  // exact: plane positions stay below 2^24
}

// The plane position of each lane's window, 2 x 2 at stride 2, for output row i from column j0.
template <class V>
typename V::R window_origins_2x2(const PoolGeometry& g, int64_t i, int64_t j0) {
  return V::add(V::set1(float(2 * i * g.w + 2 * j0)), V::mul(V::iota(), V::set1(2.0f)));
}

// Output columns j0 .. j0 + lanes - 1 of output row i of one plane, for 2 x 2 windows at
// stride 2 without padding (most CNNs' pooling): each window's four values are the even and odd
// elements of two input rows, compared in window order as above but without the general case's
// per-tap bounds.
template <class V>
void max_pool_2x2_row_block(float* y, int64_t* indices, const float* xp, const PoolGeometry& g,
                            int64_t i, int64_t j0, int lanes) {
  using R = typename V::R;
  constexpr int W = V::kWidth;
  const int n = 2 * lanes;  // input floats per row
  const float* top = xp + 2 * i * g.w + 2 * j0;
  const R origin = window_origins_2x2<V>(g, i, j0);
  R best = V::zero(), arg = V::zero();
  for (int a = 0; a < 2; ++a) {
    const float* row = top + a * g.w;
    const R lo = V::load_lanes(row, 0, std::min(n, W));
    const R hi = n > W ? V::load_lanes(row + W, 0, n - W) : V::zero();
    const R pos = V::add(origin, V::set1(float(a * g.w)));
    const R candidates[2] = {V::even_lanes(lo, hi), V::odd_lanes(lo, hi)};
    for (int b = 0; b < 2; ++b) {
      const R val = candidates[b], at = b ? V::add(pos, V::set1(1.0f)) : pos;
      if (a == 0 && b == 0) {  // the reference's -inf start loses to anything but -inf itself,
        best = val, arg = at;  // which leaves the origin as its index too
        continue;
      }
      const auto take = V::either(V::gt(val, best), V::both(V::is_nan(val), V::not_nan(best)));
      best = V::select(take, val, best);
      arg = V::select(take, at, arg);
    }
  }
  store<V>(y, best, lanes);
  V::store_as_int64(indices, arg, lanes);  // exact: plane positions stay below 2^24
}

// block(plane, i, j0, lanes) for every vector of output columns of every output row, whole
// planes per chunk, about kChunk inputs each: tiny pooling stays on one thread.
template <class V, class Block>
void for_output_blocks(const PoolGeometry& g, int threads, Block block) {
  const int64_t planes = std::max<int64_t>(1, kChunk / (g.h * g.w));
  parallel_chunks(g.planes, planes, threads, [&](int64_t pl0, int64_t pl1) {
    for (int64_t pl = pl0; pl < pl1; ++pl)
      for (int64_t i = 0; i < g.p; ++i)
        for (int64_t j0 = 0; j0 < g.q; j0 += V::kWidth)
          block(pl, i, j0, int(std::min<int64_t>(V::kWidth, g.q - j0)));
  });
}

template <class V>
void max_pool_forward(float* y, int64_t* indices, const float* x, const PoolGeometry& g,
                      int threads) {
  const bool two_by_two = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;
  for_output_blocks<V>(g, threads, [&](int64_t pl, int64_t i, int64_t j0, int lanes) {
    const int64_t out = (pl * g.p + i) * g.q + j0;
    const float* plane = x + pl * g.h * g.w;
    if (two_by_two)
      max_pool_2x2_row_block<V>(y + out, indices + out, plane, g, i, j0, lanes);
    else
      max_pool_row_block<V>(y + out, indices + out, plane, g, i, j0, lanes);
  });
}

// Output columns j0 .. j0 + lanes - 1 of output row i of one plane: false if an index lies
// outside its window.
template <class V>
bool max_pool_2x2_backward_row_block(float* gx, const float* gy, const int64_t* indices,
                                     const PoolGeometry& g, int64_t i, int64_t j0, int lanes) {
  using R = typename V::R;
  constexpr int W = V::kWidth;
  const R origin = window_origins_2x2<V>(g, i, j0);
  // Exact: positions stay below 2^24, and an index far outside converts to a float far away.
  const R offset = V::sub(V::load_int64_as_float(indices, lanes), origin);
  const R grad = load<V>(gy, lanes);
  const unsigned all = lanes >= W ? (1u << W) - 1 : (1u << lanes) - 1;
  unsigned found = 0;
  const int n = 2 * lanes;  // gradients per input row
  for (int a = 0; a < 2; ++a) {
    const auto left = V::eq(offset, V::set1(float(a * g.w)));
    const auto right = V::eq(offset, V::set1(float(a * g.w + 1)));
    found |= V::bits(V::either(left, right));
    const R even = V::select(left, grad, V::zero()), odd = V::select(right, grad, V::zero());
    float* row = gx + (2 * i + a) * g.w + 2 * j0;
    store<V>(row, V::zip_lo(even, odd), std::min(n, W));
    if (n > W) store<V>(row + W, V::zip_hi(even, odd), n - W);
  }
  return (found & all) == all;
}

template <class V>
bool max_pool_2x2_backward(float* grad_x, const float* grad_y, const int64_t* indices,
                           const PoolGeometry& g, int threads) {
  std::atomic<bool> inside{true};
  for_output_blocks<V>(g, threads, [&](int64_t pl, int64_t i, int64_t j0, int lanes) {
    float* gx = grad_x + pl * g.h * g.w;
    if (j0 == 0 && g.w > 2 * g.q)  // an odd last column: no window reads it
      gx[(2 * i) * g.w + g.w - 1] = gx[(2 * i + 1) * g.w + g.w - 1] = 0.0f;
    if (j0 == 0 && i == g.p - 1)  // an odd last row likewise
      std::fill(gx + 2 * g.p * g.w, gx + g.h * g.w, 0.0f);
    const int64_t out = (pl * g.p + i) * g.q + j0;
    if (!max_pool_2x2_backward_row_block<V>(gx, grad_y + out, indices + out, g, i, j0, lanes))
      inside.store(false, std::memory_order_relaxed);
  });
  return inside.load();
}

template <class V>
const PoolKernels& pool_table() {
  static const PoolKernels table = {&max_pool_forward<V>, &max_pool_2x2_backward<V>};
  return table;
}

}  // namespace nnx::kernels::simd
