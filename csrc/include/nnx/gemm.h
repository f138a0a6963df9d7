// Public GEMM API of nnx: C = alpha * op(A) @ op(B) + beta * C, row-major, plus an optional fused
// epilogue. Every argument is checked here; the kernels behind it trust what they are given.
#pragma once

#include <cstdint>

namespace nnx {

enum class Trans : char { N = 'N', T = 'T' };

// Where a fused bias vector lies: one value per row of C (length M) or per column (length N).
enum class BiasMode : int { none = 0, row = 1, col = 2 };

// Applied while the result tile is still in registers, in this order:
//   c = alpha * (op(A) @ op(B)) + beta * c_old ; c += bias ; c = max(c, 0) if relu
// With beta == 0, c_old is never read (it may hold NaN or garbage).
struct GemmEpilogue {
  const void* bias = nullptr;  // float* for sgemm, double* for dgemm; null means no bias
  BiasMode bias_mode = BiasMode::none;
  bool relu = false;
};

// op(A) is (m x k), op(B) is (k x n), C is (m x n); all row-major with leading dimensions
// lda/ldb/ldc (elements between consecutive rows of the stored matrix, before op()).
// Throws std::invalid_argument on bad sizes or leading dimensions.
void sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const GemmEpilogue& epilogue = {});

// Float64 GEMM for gradient checks: the scalar reference kernel, threaded over rows.
void dgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc, const GemmEpilogue& epilogue = {});

}  // namespace nnx
