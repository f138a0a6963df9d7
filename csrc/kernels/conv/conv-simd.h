// im2col / col2im and reductions over a VecF32 type: included by f32-conv-<isa>.cpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include "conv/conv.h"
#include "simd/loops.h"

namespace nnx::kernels::simd {

// f(std::integral_constant<int, n>{}) for a runtime n in [1, N]: picks the register tile
// instantiated for a block's size.
template <int N, class F>
void with_constant(int64_t n, F f) {
  if constexpr (N > 1) {
    if (n < N) return with_constant<N - 1>(n, f);
  }
  f(std::integral_constant<int, N>{});
}

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

// A stride-1 convolution without padding: every tap's output row p is the Q floats of input
// row p + r from column s on, no bounds to check. Rows of up to one vector move as one masked
// load and store (LeNet's second convolution has 10-float rows).
template <class V>
void im2col_unpadded(float* col, int64_t ld, const float* image, const ConvGeometry& g) {
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        float* row = col + ((c * g.r + r) * g.s + s) * ld;
        const float* in = image + (c * g.h + r * g.dil_h) * g.w + s * g.dil_w;
        if (g.q <= V::kWidth) {
          const int q = int(g.q);
          for (int64_t p = 0; p < g.p; ++p) store<V>(row + p * q, load<V>(in + p * g.w, q), q);
        } else {
          for (int64_t p = 0; p < g.p; ++p) copy_row<V>(row + p * g.q, in + p * g.w, g.q);
        }
      }
}

template <class V>
void im2col(float* col, int64_t ld, const float* image, const ConvGeometry& g) {
  if (g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0)
    return im2col_unpadded<V>(col, ld, image, g);
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

// The adjoint of im2col_unpadded, one plane at a time in a buffer of whole vectors per input
// row: each tap's rows are loaded shifted into place (lanes outside the tap masked off) and
// added to the buffer's vectors, which are always loaded and stored whole at the same address.
// Adding them to the image's rows at their own offsets instead stalled on loads of values
// stored a float away. Each value sums its taps in tap order, as the general col2im below does.
constexpr int64_t kPlaneBufferFloats = 4096;

template <class V>
bool col2im_unpadded_fits(const ConvGeometry& g) {
  return g.h * ((g.w + V::kWidth - 1) / V::kWidth) * V::kWidth <= kPlaneBufferFloats;
}

template <class V>
void col2im_unpadded(float* image, const float* col, int64_t ld, const ConvGeometry& g) {
  constexpr int64_t W = V::kWidth;
  const int64_t vectors = (g.w + W - 1) / W;  // per input row
  const int64_t rows = g.p, q = g.q;
  alignas(64) float buf[kPlaneBufferFloats];
  for (int64_t c = 0; c < g.c; ++c) {
    std::fill(buf, buf + g.h * vectors * W, 0.0f);
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        const float* taps = col + ((c * g.r + r) * g.s + s) * ld;
        for (int64_t v = 0; v < vectors; ++v) {
          // Tap (r, s) covers input columns [s * dil_w, s * dil_w + Q): lanes [lo, hi) of vector v.
          const int64_t first = s * g.dil_w - v * W;
          const int lo = int(std::clamp<int64_t>(first, 0, W));
          const int hi = int(std::clamp<int64_t>(first + g.q, 0, W));
          if (lo >= hi) continue;
          const float* in = taps - first;
          float* out = buf + (r * g.dil_h * vectors + v) * W;
          for (int64_t p = 0; p < rows; ++p, in += q, out += vectors * W)
            V::store(out, V::add(V::load(out), V::load_lanes(in, lo, hi)));
        }
      }
    for (int64_t h = 0; h < g.h; ++h)
      std::copy_n(buf + h * vectors * W, g.w, image + (c * g.h + h) * g.w);
  }
}

template <class V>
void col2im(float* image, const float* col, int64_t ld, const ConvGeometry& g) {
  if (g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0 &&
      col2im_unpadded_fits<V>(g))
    return col2im_unpadded<V>(image, col, ld, g);
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

// The run of tap (r, s) in a plane of the wide layout: it starts at r * dil_h * W + s * dil_w and
// covers output rows 0 .. P-1 at full width, up to the last real output column.
inline int64_t wide_run(const ConvGeometry& g) { return (g.p - 1) * g.w + g.q; }

template <class V>
void im2col_wide(float* col, int64_t ld, const float* image, const ConvGeometry& g) {
  const int64_t run = wide_run(g), width = g.p * g.w;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        float* row = col + ((c * g.r + r) * g.s + s) * ld;
        copy_row<V>(row, image + (c * g.h + r * g.dil_h) * g.w + s * g.dil_w, run);
        std::fill(row + run, row + width, 0.0f);
      }
}

template <class V>
void col2im_wide(float* image, const float* col, int64_t ld, const ConvGeometry& g) {
  std::memset(image, 0, sizeof(float) * size_t(g.c * g.h * g.w));
  const int64_t run = wide_run(g);
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s)
        add_window<V>(image + (c * g.h + r * g.dil_h) * g.w + s * g.dil_w,
                      col + ((c * g.r + r) * g.s + s) * ld, 0, run);
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
void copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
               int64_t cols, int64_t width) {
  for (int64_t i = 0; i < rows; ++i) {
    float* d = dst + i * ld_dst;
    const float* s = src + i * ld_src;
    for_vectors<V>(0, cols, [&](int64_t j, int n) { store<V>(d + j, load<V>(s + j, n), n); });
    for_vectors<V>(cols, width, [&](int64_t j, int n) { store<V>(d + j, V::zero(), n); });
  }
}

// The MT x NT dot products of rows a[0..MT) (lda apart) with rows b[0..NT) (each at its own
// address), summed over `count` segments of `len` floats: segment t of a row starts a_step (of
// b: b_step) floats after segment t - 1. Per step, NT vectors of b stay in registers while each
// row of a streams past them (MT * NT accumulators + NT + 1 registers); the sums stay in the
// accumulators across segments and are reduced once.
template <class V, int MT, int NT>
void dots_tile(float* c, int64_t ldc, const float* a, int64_t lda, const float* const* b,
               int64_t len, int64_t count, int64_t a_step, int64_t b_step, bool accumulate) {
  using R = typename V::R;
  R acc[MT][NT];
  for (int i = 0; i < MT; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = V::zero();
  // A plain loop, not for_vectors: the accumulators must stay in registers.
  const auto step = [&](int64_t t, int64_t p, int n) __attribute__((always_inline)) {
    R bv[NT];
    for (int j = 0; j < NT; ++j) bv[j] = load<V>(b[j] + t * b_step + p, n);
    for (int i = 0; i < MT; ++i) {
      R av = load<V>(a + t * a_step + i * lda + p, n);
      // One load of a's vector for its NT multiply-adds: left to itself the compiler folds the
      // load into each of them, and the loads, not the multiply-adds, set the pace.
      __asm__("" : "+v"(av));
      for (int j = 0; j < NT; ++j) acc[i][j] = V::fmadd(av, bv[j], acc[i][j]);
    }
  };
  // Every segment's whole vectors, then every segment's partial one: with both in one loop the
  // compiler kept the accumulators in memory between segments.
  const int64_t whole = len / V::kWidth * V::kWidth;
  for (int64_t t = 0; t < count; ++t)
    for (int64_t p = 0; p < whole; p += V::kWidth) step(t, p, V::kWidth);
  if (whole < len)
    for (int64_t t = 0; t < count; ++t) step(t, whole, int(len - whole));
  for (int i = 0; i < MT; ++i)
    for (int j = 0; j < NT; ++j) {
      const float sum = V::reduce_add(acc[i][j]);
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
    }
}

// Tile sizes for the edges: MT in 1..8 rows of a, NT in 1..3 rows of b.
template <class V, int MT>
void dots_edge(float* c, int64_t ldc, const float* a, int64_t lda, const float* const* b, int nt,
               int64_t len, int64_t count, int64_t a_step, int64_t b_step, bool accumulate) {
  switch (nt) {
    case 3: return dots_tile<V, MT, 3>(c, ldc, a, lda, b, len, count, a_step, b_step, accumulate);
    case 2: return dots_tile<V, MT, 2>(c, ldc, a, lda, b, len, count, a_step, b_step, accumulate);
    default: return dots_tile<V, MT, 1>(c, ldc, a, lda, b, len, count, a_step, b_step, accumulate);
  }
}

// c (m x n) (+)= the dot products of the m rows of a with the n rows of b, b's row j at b_row(j),
// over `count` segments (see dots_tile). The rows of a run in blocks of 8 past all of b, three
// rows of b at a time: a block of a stays in L1 while b streams.
template <class V, class BRow>
void dots(float* c, int64_t ldc, const float* a, int64_t lda, int64_t m, BRow b_row, int64_t n,
          int64_t len, int64_t count, int64_t a_step, int64_t b_step, bool accumulate) {
  constexpr int64_t kMT = 8, kNT = 3;
  for (int64_t i = 0; i < m; i += kMT) {
    const float* at = a + i * lda;
    for (int64_t j = 0; j < n; j += kNT) {
      const int nt = int(std::min(kNT, n - j));
      const float* bt[kNT] = {};
      for (int jj = 0; jj < nt; ++jj) bt[jj] = b_row(j + jj);
      float* ct = c + i * ldc + j;
      const auto edge = [&](auto mt) {
        dots_edge<V, decltype(mt)::value>(ct, ldc, at, lda, bt, nt, len, count, a_step, b_step,
                                          accumulate);
      };
      with_constant<kMT>(std::min(kMT, m - i), edge);
    }
  }
}

template <class V>
void row_dots(float* c, int64_t ldc, const float* a, int64_t lda, int64_t m, const float* b,
              int64_t ldb, int64_t n, int64_t len, bool accumulate) {
  dots<V>(c, ldc, a, lda, m, [&](int64_t j) { return b + j * ldb; }, n, len, 1, 0, 0, accumulate);
}

template <class V>
void weight_grad_wide(float* gw, const float* dy, int64_t ld_dy, const float* images,
                      int64_t count, const ConvGeometry& g, bool accumulate) {
  // Tap (c, r, s) of an image reads its plane from r * dil_h * W + s * dil_w on: the col row
  // im2col_wide would copy. Only the first wide_run columns of an image can reach a real
  // output; dy's junk columns among them are 0.
  const auto tap = [&](int64_t j) {
    const int64_t c = j / (g.r * g.s), r = j / g.s % g.r, s = j % g.s;
    return images + (c * g.h + r * g.dil_h) * g.w + s * g.dil_w;
  };
  dots<V>(gw, g.crs(), dy, ld_dy, g.k, tap, g.crs(), wide_run(g), count, g.p * g.w,
          g.c * g.h * g.w, accumulate);
}

// The output vectors of forward_direct. By rows (DirectMode::rows): ceil(Q / width) vectors per
// output row, the last one partial, each loaded whole from the image at its output position.
// Compact (DirectMode::compact): the image's P * Q outputs in order, width at a time, so a
// vector may span rows; it loads the two vectors of the image from its first output's position
// and permutes the lanes into place (each lane's offset from the first below 2 * width).
struct DirectItems {
  std::vector<int64_t> in, out;  // offsets of each vector's input (tap (0, 0, 0)) and output
  std::vector<int> lanes;        // stored lanes
  std::vector<int32_t> index;    // compact: width lane indices per vector
  std::vector<int64_t> taps;     // each tap's offset in an image, in the order of w's columns
  std::array<int64_t, 12> key{}; // what they were made for: a training loop repeats its shapes
};

template <class V>
void direct_items(DirectItems* items, int64_t count, int64_t image_step, int64_t y_step,
                  const ConvGeometry& g) {
  constexpr int64_t W = V::kWidth;
  const std::array<int64_t, 12> key = {count, image_step, y_step, g.c,     g.h, g.w,
                                       g.r,   g.s,        g.dil_h, g.dil_w, g.p, g.q};
  if (items->key == key) return;
  items->key = key;
  items->taps.clear();
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s)
        items->taps.push_back((c * g.h + r * g.dil_h) * g.w + s * g.dil_w);
  const bool compact = direct_mode(g, W) == DirectMode::compact;
  const int64_t per_image = compact ? (g.pq() + W - 1) / W : g.p * ((g.q + W - 1) / W);
  items->in.clear(), items->out.clear(), items->lanes.clear(), items->index.clear();
  for (int64_t n = 0; n < count; ++n)
    for (int64_t i = 0; i < per_image; ++i) {
      if (!compact) {
        const int64_t row_vectors = (g.q + W - 1) / W, p = i / row_vectors, v = i % row_vectors;
        items->in.push_back(n * image_step + p * g.w + v * W);
        items->out.push_back(n * y_step + p * g.q + v * W);
        items->lanes.push_back(int(std::min(W, g.q - v * W)));
        continue;
      }
      const int64_t first = i * W, lanes = std::min(W, g.pq() - first);
      const int64_t base = first / g.q * g.w + first % g.q;
      items->in.push_back(n * image_step + base);
      items->out.push_back(n * y_step + first);
      items->lanes.push_back(int(lanes));
      for (int64_t l = 0; l < W; ++l) {
        const int64_t o = std::min(first + l, first + lanes - 1);  // idle lanes repeat the last
        items->index.push_back(int32_t(o / g.q * g.w + o % g.q - base));
      }
    }
}

// Filters [0, KT) of forward_direct (w, bias and y start at the block's first filter) over the
// output vectors, NV at a time: per tap, the NV vectors of the image stay in registers while
// each filter's weight is broadcast past them (KT * NV accumulators).
template <class V, int KT, int NV, bool kCompact>
void direct_filters(float* y, int64_t pq, const float* images, const float* w, int64_t crs,
                    const float* bias, bool relu, const DirectItems& items) {
  using R = typename V::R;
  constexpr int W = V::kWidth;
  const int64_t vectors = int64_t(items.in.size());
  const int64_t* taps = items.taps.data();
  for (int64_t i0 = 0; i0 < vectors; i0 += NV) {
    const float* in[NV];
    float* out[NV];
    int lanes[NV];  // 0: past the last vector (it repeats the last one, unstored)
    typename V::I index[NV];
#pragma GCC unroll 8
    for (int t = 0; t < NV; ++t) {
      const int64_t i = std::min(i0 + t, vectors - 1);
      in[t] = images + items.in[size_t(i)];
      out[t] = y + items.out[size_t(i)];
      lanes[t] = i0 + t < vectors ? items.lanes[size_t(i)] : 0;
      if constexpr (kCompact) index[t] = V::load_index(items.index.data() + i * W);
    }
    R acc[KT][NV];
#pragma GCC unroll 8
    for (int k = 0; k < KT; ++k) {
      const R init = bias ? V::set1(bias[k]) : V::zero();
#pragma GCC unroll 8
      for (int t = 0; t < NV; ++t) acc[k][t] = init;
    }
    for (int64_t j = 0; j < crs; ++j) {
      R x[NV];
#pragma GCC unroll 8
      for (int t = 0; t < NV; ++t) {
        const float* at = in[t] + taps[j];
        if constexpr (kCompact) x[t] = V::permute2(V::load(at), V::load(at + W), index[t]);
        else x[t] = V::load(at);
      }
#pragma GCC unroll 8
      for (int k = 0; k < KT; ++k) {
        R wk = V::set1(w[k * crs + j]);
        // One broadcast for the NV multiply-adds (see dots_tile).
        __asm__("" : "+v"(wk));
#pragma GCC unroll 8
        for (int t = 0; t < NV; ++t) acc[k][t] = V::fmadd(wk, x[t], acc[k][t]);
      }
    }
#pragma GCC unroll 8
    for (int k = 0; k < KT; ++k)
#pragma GCC unroll 8
      for (int t = 0; t < NV; ++t) {
        const R out_v = relu ? V::max(V::zero(), acc[k][t]) : acc[k][t];
        if (lanes[t] == W) V::store(out[t] + k * pq, out_v);
        else if (lanes[t] > 0) V::store_partial(out[t] + k * pq, out_v, lanes[t]);
      }
  }
}

template <class V>
void forward_direct(float* y, int64_t y_step, const float* images, int64_t count,
                    const float* w, const float* bias, const ConvGeometry& g, bool relu) {
  // By rows 6 x 4 tiles in 32 registers (4 x 3 in 16); compact 8 x 3 (3 x 3), which leaves
  // registers for the lane indices.
  constexpr bool k512 = V::kWidth == 16;
  constexpr int KT_ROWS = k512 ? 6 : 4, NV_ROWS = 3 + k512, KT_COMPACT = k512 ? 8 : 3;
  static thread_local DirectItems items;
  direct_items<V>(&items, count, g.c * g.h * g.w, y_step, g);
  const bool compact = direct_mode(g, V::kWidth) == DirectMode::compact;
  const int64_t kt_max = compact ? KT_COMPACT : KT_ROWS;
  constexpr int kMaxKT = KT_COMPACT > KT_ROWS ? KT_COMPACT : KT_ROWS;
  for (int64_t k0 = 0; k0 < g.k; k0 += kt_max) {
    with_constant<kMaxKT>(std::min(kt_max, g.k - k0), [&](auto kt) {
      constexpr int KT = decltype(kt)::value;
      float* yk = y + k0 * g.pq();
      const float* wk = w + k0 * g.crs();
      const float* bk = bias ? bias + k0 : nullptr;
      if (compact) {
        if constexpr (KT <= KT_COMPACT)
          direct_filters<V, KT, 3, true>(yk, g.pq(), images, wk, g.crs(), bk, relu, items);
      } else if constexpr (KT <= KT_ROWS) {
        direct_filters<V, KT, NV_ROWS, false>(yk, g.pq(), images, wk, g.crs(), bk, relu, items);
      }
    });
  }
}

// Taps [row0 * S, (row0 + TR) * S) of weight_grad_direct for KV vectors of filters: TR tap rows
// (c, r) of S taps each, TR * S * KV accumulators, summed over every output position of `count`
// images. Per position: KV loads of dy_t, TR * S broadcasts of input values, each multiplied
// into the KV vectors. A tap row's input values sit at fixed offsets 0 .. S-1 from one pointer,
// so one register per row addresses them all.
template <class V, int KV, int S, int TR>
void wgrad_tile(float* gw_t, int64_t ld_gw, const float* dy_t, int64_t ld_dy, int64_t dy_step,
                const float* images, int64_t count, const ConvGeometry& g, int64_t row0,
                bool accumulate) {
  using R = typename V::R;
  constexpr int W = V::kWidth;
  const int64_t image_size = g.c * g.h * g.w;
  int64_t offset[TR];  // of each tap row's (r, s = 0) input in an image
  for (int t = 0; t < TR; ++t) {
    const int64_t c = (row0 + t) / g.r, r = (row0 + t) % g.r;
    offset[t] = (c * g.h + r * g.dil_h) * g.w;
  }
  R acc[TR][S][KV];
#pragma GCC unroll 32
  for (int t = 0; t < TR; ++t)
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s)
#pragma GCC unroll 4
      for (int v = 0; v < KV; ++v) acc[t][s][v] = V::zero();
  for (int64_t n = 0; n < count; ++n) {
    const float* d = dy_t + n * dy_step;
    for (int64_t p = 0; p < g.p; ++p) {
      const float* in[TR];
#pragma GCC unroll 32
      for (int t = 0; t < TR; ++t)
        in[t] = images + n * image_size + offset[t] + p * g.stride_h * g.w;
      for (int64_t q = 0, x = 0; q < g.q; ++q, x += g.stride_w, d += ld_dy) {
        R dv[KV];
#pragma GCC unroll 4
        for (int v = 0; v < KV; ++v) dv[v] = V::load(d + v * W);
#pragma GCC unroll 32
        for (int t = 0; t < TR; ++t)
#pragma GCC unroll 8
          for (int s = 0; s < S; ++s) {
            const R xv = V::set1(in[t][x + s]);
#pragma GCC unroll 4
            for (int v = 0; v < KV; ++v) acc[t][s][v] = V::fmadd(xv, dv[v], acc[t][s][v]);
          }
      }
    }
  }
#pragma GCC unroll 32
  for (int t = 0; t < TR; ++t)
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s)
#pragma GCC unroll 4
      for (int v = 0; v < KV; ++v) {
        float* out = gw_t + ((row0 + t) * S + s) * ld_gw + v * W;
        V::store(out, accumulate ? V::add(V::load(out), acc[t][s][v]) : acc[t][s][v]);
      }
}

// The most tap rows per tile: up to 25 accumulators of 32 registers, 12 of 16.
template <class V, int KV, int S>
constexpr int wgrad_max_rows() {
  constexpr int acc = V::kWidth == 16 ? 25 : 12;
  return acc / (KV * S) > 0 ? acc / (KV * S) : 1;
}

template <class V>
void weight_grad_direct(float* gw_t, int64_t ld_gw, const float* dy_t, int64_t ld_dy,
                        int64_t dy_step, const float* images, int64_t count, const ConvGeometry& g,
                        bool accumulate) {
  // Up to 4 vectors of filters per pass over the images (2 in 16 registers).
  constexpr int64_t W = V::kWidth, kMaxKV = W == 16 ? 4 : 2;
  const int64_t vectors = ld_dy / W, rows = g.c * g.r;
  for (int64_t v0 = 0; v0 < vectors; v0 += kMaxKV) {
    const auto pass = [&](auto kv, auto s) {
      constexpr int KV = decltype(kv)::value, S = decltype(s)::value;
      // Tap rows in tiles of as equal sizes as can be (9 rows as 3 x 3, not 4 + 4 + 1).
      const int64_t tiles = (rows + wgrad_max_rows<V, KV, S>() - 1) / wgrad_max_rows<V, KV, S>();
      for (int64_t i = 0; i < tiles; ++i) {
        const int64_t row0 = rows * i / tiles, row1 = rows * (i + 1) / tiles;
        with_constant<wgrad_max_rows<V, KV, S>()>(row1 - row0, [&](auto tr) {
          wgrad_tile<V, KV, S, decltype(tr)::value>(gw_t + v0 * W, ld_gw, dy_t + v0 * W, ld_dy,
                                                    dy_step, images, count, g, row0, accumulate);
        });
      }
    };
    const auto width = [&](auto kv) {
      if (g.s == 3) return pass(kv, std::integral_constant<int, 3>{});
      pass(kv, std::integral_constant<int, 5>{});
    };
    with_constant<kMaxKV>(std::min(kMaxKV, vectors - v0), width);
  }
}

// Input columns [w0, w0 + WT) of row h, channels [c0, c0 + CT), of input_grad_lanes, summing
// tap rows [r0, r1) and tap columns [s0, s1) (each reaching inside dy from every column of the
// tile). Per filter of a tap: WT loads of dy_t, CT broadcasts of weights, each multiplied into
// the WT vectors (CT * WT accumulators).
template <class V, int CT, int WT>
void lanes_tile(float* gx_t, const float* dy_t, const float* w_t, const ConvGeometry& g,
                int64_t c0, int64_t h, int64_t w0, int64_t r0, int64_t r1, int64_t s0,
                int64_t s1) {
  using R = typename V::R;
  constexpr int64_t W = V::kWidth;
  const int64_t plane = g.pq() * W;  // one filter's output gradient
  R acc[CT][WT];
#pragma GCC unroll 8
  for (int c = 0; c < CT; ++c)
#pragma GCC unroll 8
    for (int t = 0; t < WT; ++t) acc[c][t] = V::zero();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t p = h + g.pad_h - r * g.dil_h;
    for (int64_t s = s0; s < s1; ++s) {
      const float* d = dy_t + (p * g.q + w0 + g.pad_w - s * g.dil_w) * W;
      const float* wk = w_t + (r * g.s + s) * g.k * g.c + c0;
      for (int64_t k = 0; k < g.k; ++k, d += plane, wk += g.c) {
        R x[WT];
#pragma GCC unroll 8
        for (int t = 0; t < WT; ++t) x[t] = V::load(d + t * W);
#pragma GCC unroll 8
        for (int c = 0; c < CT; ++c) {
          R wc = V::set1(wk[c]);
          __asm__("" : "+v"(wc));  // one broadcast for the WT multiply-adds (see dots_tile)
#pragma GCC unroll 8
          for (int t = 0; t < WT; ++t) acc[c][t] = V::fmadd(wc, x[t], acc[c][t]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < CT; ++c)
#pragma GCC unroll 8
    for (int t = 0; t < WT; ++t)
      V::store(gx_t + (((c0 + c) * g.h + h) * g.w + w0 + t) * W, acc[c][t]);
}

// floor(a / b) for b > 0 and any a.
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The taps [lo, hi) of a stride-1 kernel (`size` taps, dilation dil) that read an output
// gradient inside [0, out) for input position x: those with x + pad - tap * dil in [0, out).
inline void valid_taps(int64_t x, int64_t pad, int64_t dil, int64_t size, int64_t out,
                       int64_t* lo, int64_t* hi) {
  *lo = std::max<int64_t>(0, -floor_div(out - 1 - x - pad, dil));
  *hi = std::max(*lo, std::min(size, floor_div(x + pad, dil) + 1));
}

template <class V>
void input_grad_lanes(float* gx_t, const float* dy_t, const float* w_t, const ConvGeometry& g,
                      int64_t c_first, int64_t c_last) {
  // 6 channels x 4 positions in 32 registers, 3 x 3 in 16.
  constexpr bool k512 = V::kWidth == 16;
  constexpr int kMaxCT = k512 ? 6 : 3, kMaxWT = k512 ? 4 : 3;
  // The input columns every column tap reaches from inside dy: [first, last). Each of the
  // others (near the edges) is a tile of its own, with its own taps.
  const int64_t first = std::clamp<int64_t>((g.s - 1) * g.dil_w - g.pad_w, 0, g.w);
  const int64_t last = std::clamp<int64_t>(g.q - g.pad_w, first, g.w);
  // Channels and interior runs in tiles of as equal sizes as can be.
  const int64_t channels = c_last - c_first, c_tiles = (channels + kMaxCT - 1) / kMaxCT;
  const int64_t w_tiles = (last - first + kMaxWT - 1) / kMaxWT;
  for (int64_t ci = 0; ci < c_tiles; ++ci) {
    const int64_t c0 = c_first + channels * ci / c_tiles;
    const int64_t c1 = c_first + channels * (ci + 1) / c_tiles;
    with_constant<kMaxCT>(c1 - c0, [&](auto ct) {
      constexpr int CT = decltype(ct)::value;
      for (int64_t h = 0; h < g.h; ++h) {
        int64_t r0, r1;
        valid_taps(h, g.pad_h, g.dil_h, g.r, g.p, &r0, &r1);
        const auto edge = [&](int64_t x) {
          int64_t s0, s1;
          valid_taps(x, g.pad_w, g.dil_w, g.s, g.q, &s0, &s1);
          lanes_tile<V, CT, 1>(gx_t, dy_t, w_t, g, c0, h, x, r0, r1, s0, s1);
        };
        for (int64_t x = 0; x < first; ++x) edge(x);
        for (int64_t i = 0; i < w_tiles; ++i) {
          const int64_t x0 = first + (last - first) * i / w_tiles;
          const int64_t x1 = first + (last - first) * (i + 1) / w_tiles;
          with_constant<kMaxWT>(x1 - x0, [&](auto wt) {
            lanes_tile<V, CT, decltype(wt)::value>(gx_t, dy_t, w_t, g, c0, h, x0, r0, r1, 0, g.s);
          });
        }
        for (int64_t x = last; x < g.w; ++x) edge(x);
      }
    });
  }
}

template <class V>
const ConvKernels& conv_table() {
  static const ConvKernels table = {&im2col<V>,   &col2im<V>,     &im2col_wide<V>,
                                    &col2im_wide<V>, &row_sums<V>, &accumulate<V>,
                                    &copy_rows<V>,   &row_dots<V>,
                                    &weight_grad_wide<V>, &forward_direct<V>,
                                    &weight_grad_direct<V>, &transpose<V>,
                                    &input_grad_lanes<V>};
  return table;
}

}  // namespace nnx::kernels::simd
