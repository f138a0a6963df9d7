// Loop drivers shared by the SIMD kernels: chunked OpenMP over elements or rows, and vector loops
// whose last partial vector is loaded and stored lane by lane (masked) but computed by the same
// vector code, so an element's result never depends on where it falls: not on the thread count,
// not on alignment.
#pragma once

#include <algorithm>
#include <cstdint>

namespace nnx::kernels::simd {

// Elements per parallel chunk: a multiple of every vector width, large enough to amortise a
// thread's start (about 30 us of work).
constexpr int64_t kChunk = 16384;

// Calls f(begin, end) over [0, n) in chunks of `chunk`, in parallel when there is more than one.
template <class F>
void parallel_chunks(int64_t n, int64_t chunk, int threads, F f) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (threads <= 1 || chunks <= 1) {
    for (int64_t c = 0; c < chunks; ++c) f(c * chunk, std::min(n, (c + 1) * chunk));
    return;
  }
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(int(std::min<int64_t>(threads, chunks)))
  for (int64_t c = 0; c < chunks; ++c) f(c * chunk, std::min(n, (c + 1) * chunk));
}

// Loads `count` (<= width) floats, the remaining lanes set to `fill`.
template <class V>
typename V::R load(const float* p, int count, float fill = 0.0f) {
  return count == V::kWidth ? V::load(p) : V::load_partial(p, count, fill);
}

template <class V>
void store(float* p, typename V::R v, int count) {
  if (count == V::kWidth) return V::store(p, v);
  V::store_partial(p, v, count);
}

// body(i, count) for every vector of [begin, end): count == width except possibly the last.
template <class V, class Body>
void for_vectors(int64_t begin, int64_t end, Body body) {
  for (int64_t i = begin; i < end; i += V::kWidth)
    body(i, int(std::min<int64_t>(V::kWidth, end - i)));
}

// out[i] = f(in[i]...) for i in [0, n), in parallel chunks.
template <class V, class F, class... In>
void map(float* out, int64_t n, int threads, F f, const In*... in) {
  parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
    for_vectors<V>(b, e, [&](int64_t i, int count) {
      store<V>(out + i, f(load<V>(in + i, count)...), count);
    });
  });
}

// Walks a (rows x cols) matrix in kWidth x kWidth blocks, row blocks in order and the blocks of
// each in column order: row(i, j0, count) loads count values of row i from column j0, a register
// transpose turns the block over, and column(j, i0, v, count) receives column j's count values
// from row i0.
template <class V, class Row, class Column>
void for_transposed_blocks(int64_t rows, int64_t cols, Row row, Column column) {
  constexpr int W = V::kWidth;
  for (int64_t i0 = 0; i0 < rows; i0 += W) {
    const int ni = int(std::min<int64_t>(W, rows - i0));
    for (int64_t j0 = 0; j0 < cols; j0 += W) {
      const int nj = int(std::min<int64_t>(W, cols - j0));
      typename V::R v[W];
      for (int i = 0; i < W; ++i) v[i] = i < ni ? row(i0 + i, j0, nj) : V::zero();
      V::transpose(v);
      for (int j = 0; j < nj; ++j) column(j0 + j, i0, v[j], ni);
    }
  }
}

// dst (cols x rows, rows ld_dst apart) <- src (rows x cols, rows ld_src apart).
template <class V>
void transpose(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
               int64_t cols) {
  for_transposed_blocks<V>(
      rows, cols, [&](int64_t i, int64_t j0, int count) { return load<V>(src + i * ld_src + j0, count); },
      [&](int64_t j, int64_t i0, typename V::R v, int count) {
        store<V>(dst + j * ld_dst + i0, v, count);
      });
}

}  // namespace nnx::kernels::simd
