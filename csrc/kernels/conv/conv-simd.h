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

template <class V>
void im2col(float* col, const float* image, const ConvGeometry& g) {
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        float* row = col + ((c * g.r + r) * g.s + s) * g.pq();
        const int64_t w_off = s * g.dil_w - g.pad_w;
        int64_t q0, q1;
        valid_columns(g.q, g.stride_w, w_off, g.w, &q0, &q1);
        for (int64_t p = 0; p < g.p; ++p) {
          float* out = row + p * g.q;
          const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
          if (ih < 0 || ih >= g.h) {
            std::memset(out, 0, sizeof(float) * size_t(g.q));
            continue;
          }
          const float* in = image + (c * g.h + ih) * g.w + w_off;
          std::memset(out, 0, sizeof(float) * size_t(q0));
          if (g.stride_w == 1) {
            std::memcpy(out + q0, in + q0, sizeof(float) * size_t(q1 - q0));
          } else {
            for (int64_t q = q0; q < q1; ++q) out[q] = in[q * g.stride_w];
          }
          std::memset(out + q1, 0, sizeof(float) * size_t(g.q - q1));
        }
      }
}

template <class V>
void col2im(float* image, const float* col, const ConvGeometry& g) {
  std::memset(image, 0, sizeof(float) * size_t(g.c * g.h * g.w));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        const float* row = col + ((c * g.r + r) * g.s + s) * g.pq();
        const int64_t w_off = s * g.dil_w - g.pad_w;
        int64_t q0, q1;
        valid_columns(g.q, g.stride_w, w_off, g.w, &q0, &q1);
        for (int64_t p = 0; p < g.p; ++p) {
          const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
          if (ih < 0 || ih >= g.h) continue;
          const float* in = row + p * g.q;
          float* out = image + (c * g.h + ih) * g.w + w_off;
          if (g.stride_w == 1) {
            for_vectors<V>(q0, q1, [&](int64_t q, int n) {
              store<V>(out + q, V::add(load<V>(out + q, n), load<V>(in + q, n)), n);
            });
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
