// Distances between the rows of two matrices and the running k-nearest list of a query, for
// k-nearest-neighbour search. The L2 distance block is a GEMM (|q|^2 + |r|^2 - 2 q.r, in the
// runtime); this family holds what the GEMM cannot do: the L1 block and the selection.
#pragma once

#include <cstdint>

namespace nnx::kernels {

struct DistKernels {
  // d[i * ldd + j] = sum_p |q[i * dim + p] - r[j * dim + p]| for i < nq, j < nr. Single-threaded:
  // the caller splits the work.
  void (*l1_block)(float* d, int64_t ldd, const float* q, int64_t nq, const float* r, int64_t nr,
                   int64_t dim);
  // Offers the candidates (max(row[j] + add, 0), j0 + j), j < n in increasing order, to one query's
  // k-best list (see offer_candidate).
  void (*offer_row)(float* best_d, int64_t* best_i, int64_t k, const float* row, int64_t n,
                    int64_t j0, float add);
};

namespace avx2 { const DistKernels& dist_kernels(); }
namespace avx512 { const DistKernels& dist_kernels(); }

// One query's k-best list: best_d ascending, best_i the matching reference indices, unfilled slots
// holding +inf and -1. Candidates arrive in increasing index order, so a candidate whose distance
// equals one already listed goes after it: equal distances keep the smaller index first. Only a
// candidate strictly below best_d[k - 1] enters (NaN never does).
template <typename T>
inline void offer_candidate(T* best_d, int64_t* best_i, int64_t k, T d, int64_t j) {
  if (!(d < best_d[k - 1])) return;
  int64_t p = k - 1;
  for (; p > 0 && d < best_d[p - 1]; --p) {
    best_d[p] = best_d[p - 1];
    best_i[p] = best_i[p - 1];
  }
  best_d[p] = d;
  best_i[p] = j;
}

namespace ref {
template <typename T>
void l1_block(T* d, int64_t ldd, const T* q, int64_t nq, const T* r, int64_t nr, int64_t dim);
template <typename T>
void offer_row(T* best_d, int64_t* best_i, int64_t k, const T* row, int64_t n, int64_t j0, T add);
}  // namespace ref

}  // namespace nnx::kernels
