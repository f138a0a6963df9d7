// k-nearest-neighbour search. The distances come block by block: L2 as one GEMM per block of
// queries x references (alpha = -2, the references' squared norms as its fused column bias), L1
// from the SIMD kernel; each block's rows are then offered to the queries' k-best lists. Every
// query scans the references in index order, so ties and results never depend on the blocking or
// on the thread count.
#include "nnx/knn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "internal.h"
#include "nnx/gemm.h"
#include "parallel.h"

namespace nnx {
namespace {

// L2 blocks: 1024 x 1024 keeps GEMM packing near 10% of its arithmetic for dim ~ 1000 while the
// block (4 MiB of float) stays in the last-level cache.
constexpr int64_t kL2Queries = 1024, kL2Refs = 1024;
// L1 blocks: a few hundred KiB of references stay in L2 while every query tile passes over them.
constexpr int64_t kL1RefBytes = 512 * 1024, kL1QueryTile = 16;

void gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
             const float* bias_col) {
  sgemm(Trans::N, Trans::T, m, n, k, -2.0f, a, k, b, k, 0.0f, c, n, {bias_col, BiasMode::col});
}
void gemm_nt(int64_t m, int64_t n, int64_t k, const double* a, const double* b, double* c,
             const double* bias_col) {
  dgemm(Trans::N, Trans::T, m, n, k, -2.0, a, k, b, k, 0.0, c, n, {bias_col, BiasMode::col});
}

template <typename T>
struct Kernels {
  const kernels::DistKernels* simd;
  void l1_block(T* d, int64_t ldd, const T* q, int64_t nq, const T* r, int64_t nr,
                int64_t dim) const {
    if constexpr (std::is_same_v<T, float>)
      if (simd) return simd->l1_block(d, ldd, q, nq, r, nr, dim);
    kernels::ref::l1_block<T>(d, ldd, q, nq, r, nr, dim);
  }
  void offer_row(T* best_d, int64_t* best_i, int64_t k, const T* row, int64_t n, int64_t j0,
                 T add) const {
    if constexpr (std::is_same_v<T, float>)
      if (simd) return simd->offer_row(best_d, best_i, k, row, n, j0, add);
    kernels::ref::offer_row<T>(best_d, best_i, k, row, n, j0, add);
  }
};

template <typename T>
std::vector<T> squared_norms(const T* x, int64_t rows, int64_t dim) {
  std::vector<T> out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    T sum = 0;
    for (int64_t p = 0; p < dim; ++p) sum += x[i * dim + p] * x[i * dim + p];
    out[size_t(i)] = sum;
  }
  return out;
}

template <typename T>
void search_l2(int64_t* best_i, T* best_d, const T* queries, int64_t nq, const T* refs, int64_t nr,
               int64_t dim, int64_t k, const Kernels<T>& kern, int threads) {
  const std::vector<T> query_norms = squared_norms(queries, nq, dim);
  const std::vector<T> ref_norms = squared_norms(refs, nr, dim);
  T* block = runtime::workspace_of<T>(runtime::Slot::shared, size_t(kL2Queries * kL2Refs));
  for (int64_t q0 = 0; q0 < nq; q0 += kL2Queries) {
    const int64_t qb = std::min(kL2Queries, nq - q0);
    for (int64_t r0 = 0; r0 < nr; r0 += kL2Refs) {
      const int64_t rb = std::min(kL2Refs, nr - r0);
      // block = |r|^2 - 2 q.r; |q|^2 is added while offering, so that ranking and the reported
      // distance use the same rounded value.
      gemm_nt(qb, rb, dim, queries + q0 * dim, refs + r0 * dim, block, ref_norms.data() + r0);
      runtime::parallel_for(qb, threads, [&](int64_t i) {
        const int64_t q = q0 + i;
        kern.offer_row(best_d + q * k, best_i + q * k, k, block + i * rb, rb, r0,
                       query_norms[size_t(q)]);
      });
    }
  }
}

template <typename T>
void search_l1(int64_t* best_i, T* best_d, const T* queries, int64_t nq, const T* refs, int64_t nr,
               int64_t dim, int64_t k, const Kernels<T>& kern, int threads) {
  const int64_t ref_block = std::max<int64_t>(4, kL1RefBytes / int64_t(sizeof(T) * dim));
  const int64_t tiles = (nq + kL1QueryTile - 1) / kL1QueryTile;
  for (int64_t r0 = 0; r0 < nr; r0 += ref_block) {
    const int64_t rb = std::min(ref_block, nr - r0);
    runtime::parallel_for(tiles, threads, [&](int64_t t) {
      const int64_t q0 = t * kL1QueryTile, qt = std::min(kL1QueryTile, nq - q0);
      T* block = runtime::workspace_of<T>(runtime::Slot::chunk, size_t(kL1QueryTile * rb));
      kern.l1_block(block, rb, queries + q0 * dim, qt, refs + r0 * dim, rb, dim);
      for (int64_t i = 0; i < qt; ++i) {
        const int64_t q = q0 + i;
        kern.offer_row(best_d + q * k, best_i + q * k, k, block + i * rb, rb, r0, T(0));
      }
    });
  }
}

template <typename T>
void require_finite(const T* x, int64_t count, const char* what) {
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(x[i]))
      throw std::invalid_argument(std::string("knn_search: ") + what +
                                  " contain NaN or infinity (element " + std::to_string(i) + ")");
}

}  // namespace

Metric parse_metric(const std::string& name) {
  if (name == "l1") return Metric::l1;
  if (name == "l2") return Metric::l2;
  throw std::invalid_argument("unknown metric '" + name + "': expected 'l1' or 'l2'");
}

const char* metric_name(Metric metric) { return metric == Metric::l1 ? "l1" : "l2"; }

template <typename T>
void knn_search(int64_t* indices, T* distances, const T* queries, int64_t num_queries,
                const T* refs, int64_t num_refs, int64_t dim, int64_t k, Metric metric) {
  if (num_queries < 0 || num_refs < 1 || dim < 1)
    throw std::invalid_argument("knn_search: need queries >= 0, references >= 1 and dim >= 1, got " +
                                std::to_string(num_queries) + ", " + std::to_string(num_refs) +
                                " and " + std::to_string(dim));
  if (k < 1 || k > num_refs)
    throw std::invalid_argument("knn_search: k = " + std::to_string(k) + " must be in [1, " +
                                std::to_string(num_refs) + "] (the number of references)");
  require_finite(queries, num_queries * dim, "queries");
  require_finite(refs, num_refs * dim, "references");
  std::fill(indices, indices + num_queries * k, int64_t(-1));
  std::fill(distances, distances + num_queries * k, std::numeric_limits<T>::infinity());
  const Kernels<T> kern{runtime::float_kernels<T>(&runtime::KernelTable::dist)};
  const int threads = get_num_threads();
  if (metric == Metric::l2)
    search_l2(indices, distances, queries, num_queries, refs, num_refs, dim, k, kern, threads);
  else
    search_l1(indices, distances, queries, num_queries, refs, num_refs, dim, k, kern, threads);
  // Finite inputs fill every list unless a distance overflowed to infinity (or inf - inf).
  if (num_queries > 0 && std::find(indices, indices + num_queries * k, -1) != indices + num_queries * k)
    throw std::overflow_error(std::string("knn_search: ") + metric_name(metric) +
                              " distances overflow; scale the data down");
}

template void knn_search<float>(int64_t*, float*, const float*, int64_t, const float*, int64_t,
                                int64_t, int64_t, Metric);
template void knn_search<double>(int64_t*, double*, const double*, int64_t, const double*,
                                 int64_t, int64_t, int64_t, Metric);

}  // namespace nnx
