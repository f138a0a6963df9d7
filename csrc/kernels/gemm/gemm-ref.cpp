// Scalar reference GEMM, float and double: the fallback for NNX_ISA=ref, the float64 path of
// gradient checks, and the oracle that the SIMD kernels are tested against.
#include <algorithm>

#include "gemm/gemm.h"

namespace nnx::kernels {

template <typename T>
void gemm_ref(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
              int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias,
              BiasMode bias_mode, bool relu, int num_threads) {
  // op(A)(i, p) and op(B)(p, j) as strides over the stored matrices.
  const int64_t a_rs = trans_a == Trans::N ? lda : 1, a_cs = trans_a == Trans::N ? 1 : lda;
  const int64_t b_rs = trans_b == Trans::N ? ldb : 1, b_cs = trans_b == Trans::N ? 1 : ldb;
  (void)num_threads;
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += a[i * a_rs + p * a_cs] * b[p * b_rs + j * b_cs];
      T v = alpha * acc;
      if (beta != T(0)) v += beta * c[i * ldc + j];
      if (bias_mode == BiasMode::row) v += bias[i];
      if (bias_mode == BiasMode::col) v += bias[j];
      if (relu) v = std::max(v, T(0));
      c[i * ldc + j] = v;
    }
  }
}

template <typename T>
void gemm_scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc, const T* bias, BiasMode bias_mode,
                  bool relu) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T v = beta != T(0) ? beta * c[i * ldc + j] : T(0);
      if (bias_mode == BiasMode::row) v += bias[i];
      if (bias_mode == BiasMode::col) v += bias[j];
      if (relu) v = std::max(v, T(0));
      c[i * ldc + j] = v;
    }
  }
}

template void gemm_scale_c<float>(int64_t, int64_t, float, float*, int64_t, const float*, BiasMode,
                                  bool);
template void gemm_scale_c<double>(int64_t, int64_t, double, double*, int64_t, const double*,
                                   BiasMode, bool);
template void gemm_ref<float>(Trans, Trans, int64_t, int64_t, int64_t, float, const float*, int64_t,
                              const float*, int64_t, float, float*, int64_t, const float*, BiasMode,
                              bool, int);
template void gemm_ref<double>(Trans, Trans, int64_t, int64_t, int64_t, double, const double*,
                               int64_t, const double*, int64_t, double, double*, int64_t,
                               const double*, BiasMode, bool, int);

}  // namespace nnx::kernels
