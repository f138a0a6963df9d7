// im2col / col2im and reductions over a VecF32 type: included by f32-conv-<isa>.cpp.
#pragma once

#include <algorithm>
#include <cstring>

#include "conv/conv.h"
#include "simd/loops.h"

namespace nnx::kernels::simd {

// The output columns [q0, q1) whose input column q * stride + offset lies inside [0, width).
inline void valid_columns(int64_t q_count, int64_t stride, int64_t offset, int64_t width,
                          int64_t* q0, int64_t* q1) {
  // q * stride + offset >= 0  <=>  q >= ceil(-offset / stride)
  *q0 = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // q * stride + offset < width  <=>  q <= (width - 1 - offset) / stride
  *q1 = width - 1 - offset < 0 ? 0 : std::min(q_count, (width - 1 - offset) / stride + 1);
  *q0 = std::min(*q0, *q1);
}

// out[q] = in[q] for q in [q0, q1) and 0 elsewhere in [0, count): whole vectors, the lanes outside
// [q0, q1) masked off, so short rows (LeNet's 10-wide outputs) cost one or two vector moves.
template <class V>
void copy_window(float* out, const float* in, int64_t count, int64_t q0, int64_t q1) {
  for_vectors<V>(0, count, [&](int64_t q, int n) {
    const int lo = int(std::clamp<int64_t>(q0 - q, 0, n)), hi = int(std::clamp<int64_t>(q1 - q, 0, n));
    store<V>(out + q, lo < hi ? V::load_lanes(in + q, lo, hi) : V::zero(), n);
  });
}

// out[q] += in[q] for q in [q0, q1).
template <class V>
void add_window(float* out, const float* in, int64_t q0, int64_t q1) {
  for_vectors<V>(q0, q1, [&](int64_t q, int n) {
    store<V>(out + q, V::add(load<V>(out + q, n), load<V>(in + q, n)), n);
  });
}

// out[q] = in[q] for q in [0, count): full vectors, then one partial one. The common case of
// im2col (a tap whose row lies wholly inside the input), without per-lane bounds.
template <class V>
inline void copy_row(float* out, const float* in, int64_t count) {
  int64_t q = 0;
  for (; q + V::kWidth <= count; q += V::kWidth) V::store(out + q, V::load(in + q));
  if (q < count) V::store_partial(out + q, V::load_partial(in + q, int(count - q), 0.0f), int(count - q));
}

template <class V>
void im2col(float* col, int64_t ld, const float* image, const ConvGeometry& g) {
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        float* row = col + ((c * g.r + r) * g.s + s) * ld;
        const int64_t w_off = s * g.dil_w - g.pad_w;
        int64_t q0, q1;
        valid_columns(g.q, g.stride_w, w_off, g.w, &q0, &q1);
        for (int64_t p = 0; p < g.p; ++p) {
          float* out = row + p * g.q;
          const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
          // `in` points at column w_off of the input row: in[q * stride] is output column q.
          const float* in = image + (c * g.h + ih) * g.w + w_off;
          if (ih < 0 || ih >= g.h) {
            copy_window<V>(out, nullptr, g.q, 0, 0);
          } else if (g.stride_w == 1 && q0 == 0 && q1 == g.q) {
            copy_row<V>(out, in, g.q);
          } else if (g.stride_w == 1) {
            copy_window<V>(out, in, g.q, q0, q1);
          } else {
            for (int64_t q = 0; q < g.q; ++q) out[q] = q >= q0 && q < q1 ? in[q * g.stride_w] : 0.0f;
          }
        }
      }
}

template <class V>
void col2im(float* image, const float* col, int64_t ld, const ConvGeometry& g) {
  std::memset(image, 0, sizeof(float) * size_t(g.c * g.h * g.w));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        const float* row = col + ((c * g.r + r) * g.s + s) * ld;
        const int64_t w_off = s * g.dil_w - g.pad_w;
        int64_t q0, q1;
        valid_columns(g.q, g.stride_w, w_off, g.w, &q0, &q1);
        for (int64_t p = 0; p < g.p; ++p) {
          const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
          if (ih < 0 || ih >= g.h) continue;
          const float* in = row + p * g.q;
          float* out = image + (c * g.h + ih) * g.w + w_off;
          if (g.stride_w == 1) {
            add_window<V>(out, in, q0, q1);
          } else {
            for (int64_t q = q0; q < q1; ++q) out[q * g.stride_w] += in[q];
          }
        }
      }
}

template <class V>
void row_sums(float* out, const float* x, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    typename V::R acc = V::zero();
    for_vectors<V>(0, cols, [&](int64_t j, int n) { acc = V::add(acc, load<V>(x + i * cols + j, n)); });
    out[i] = V::reduce_add(acc);
  }
}

template <class V>
void accumulate(float* y, const float* x, int64_t n) {
  for_vectors<V>(0, n, [&](int64_t i, int c) { store<V>(y + i, V::add(load<V>(y + i, c), load<V>(x + i, c)), c); });
}

template <class V>
const ConvKernels& conv_table() {
  static const ConvKernels table = {&im2col<V>, &col2im<V>, &row_sums<V>, &accumulate<V>};
  return table;
}

}  // namespace nnx::kernels::simd
