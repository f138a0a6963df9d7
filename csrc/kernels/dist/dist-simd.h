// Distance kernels over a VecF32 type: included by f32-dist-<isa>.cpp.
#pragma once

#include <algorithm>
#include <cstdint>

#include "dist/dist.h"
#include "simd/loops.h"

namespace nnx::kernels::simd {

// The MQ x NR distances between queries q[0..MQ) and references r[0..NR) (rows of dim floats),
// each accumulated lane-wise in its own register: loads of one reference vector serve MQ queries.
// A distance is the same whichever tile size computes it.
template <class V, int MQ, int NR>
void l1_tile(float* d, int64_t ldd, const float* q, const float* r, int64_t dim) {
  using R = typename V::R;
  R acc[MQ][NR];
  for (int i = 0; i < MQ; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = V::zero();
  for_vectors<V>(0, dim, [&](int64_t p, int n) {
    R rv[NR];
    for (int j = 0; j < NR; ++j) rv[j] = load<V>(r + j * dim + p, n);
    for (int i = 0; i < MQ; ++i) {
      const R qv = load<V>(q + i * dim + p, n);
      for (int j = 0; j < NR; ++j) acc[i][j] = V::add(acc[i][j], V::abs(V::sub(qv, rv[j])));
    }
  });
  for (int i = 0; i < MQ; ++i)
    for (int j = 0; j < NR; ++j) d[i * ldd + j] = V::reduce_add(acc[i][j]);
}

template <class V>
void l1_block(float* d, int64_t ldd, const float* q, int64_t nq, const float* r, int64_t nr,
              int64_t dim) {
  constexpr int64_t kTile = 4;
  for (int64_t j = 0; j < nr; j += kTile) {
    const int64_t nj = std::min(kTile, nr - j);
    for (int64_t i = 0; i < nq; i += kTile) {
      const int64_t ni = std::min(kTile, nq - i);
      if (ni == kTile && nj == kTile) {
        l1_tile<V, kTile, kTile>(d + i * ldd + j, ldd, q + i * dim, r + j * dim, dim);
        continue;
      }
      for (int64_t ii = i; ii < i + ni; ++ii)
        for (int64_t jj = j; jj < j + nj; ++jj)
          l1_tile<V, 1, 1>(d + ii * ldd + jj, ldd, q + ii * dim, r + jj * dim, dim);
    }
  }
}

// A vector of candidates at a time: almost all are no better than the current k-th distance, and
// one comparison rejects a whole vector of them.
template <class V>
void offer_row(float* best_d, int64_t* best_i, int64_t k, const float* row, int64_t n, int64_t j0,
               float add) {
  using R = typename V::R;
  const R vadd = V::set1(add), zero = V::zero();
  for_vectors<V>(0, n, [&](int64_t j, int count) {
    // max(0, x) keeps a NaN, as the reference's std::max(x, 0) does.
    const R v = V::max(zero, V::add(load<V>(row + j, count), vadd));
    unsigned bits = V::bits(V::lt(v, V::set1(best_d[k - 1])));
    if (count < V::kWidth) bits &= (1u << count) - 1;
    if (bits == 0) return;
    alignas(64) float lanes[V::kWidth];
    V::store(lanes, v);
    for (; bits != 0; bits &= bits - 1) {
      const int lane = __builtin_ctz(bits);
      offer_candidate(best_d, best_i, k, lanes[lane], j0 + j + lane);
    }
  });
}

template <class V>
const DistKernels& dist_table() {
  static const DistKernels table = {&l1_block<V>, &offer_row<V>};
  return table;
}

}  // namespace nnx::kernels::simd
