// Scalar reference batch normalisation, float and double.
#include <cmath>

#include "norm/norm.h"

namespace nnx::kernels::ref {

// Below this many values a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 65536;

template <typename T>
void batch_norm_forward_train(T* y, T* mean, T* invstd, const T* x, const T* gamma, const T* beta,
                              const NormGeometry& g, T eps, int threads) {
  (void)threads;
  const T count = T(g.n * g.m);
#pragma omp parallel for schedule(static) num_threads(threads) if (g.n * g.c * g.m > kParallelMin)
  for (int64_t c = 0; c < g.c; ++c) {
    T sum = 0;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t i = 0; i < g.m; ++i) sum += x[(n * g.c + c) * g.m + i];
    const T mu = sum / count;
    T sq = 0;  // two passes: the variance of the deviations, not E[x^2] - mean^2
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t i = 0; i < g.m; ++i) {
        const T d = x[(n * g.c + c) * g.m + i] - mu;
        sq += d * d;
      }
    const T is = 1 / std::sqrt(sq / count + eps);
    mean[c] = mu;
    invstd[c] = is;
    const T scale = is * (gamma ? gamma[c] : T(1)), shift = beta ? beta[c] : T(0);
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t i = 0; i < g.m; ++i) {
        const int64_t k = (n * g.c + c) * g.m + i;
        y[k] = (x[k] - mu) * scale + shift;
      }
  }
}

template <typename T>
void batch_norm_scale_shift(T* y, const T* x, const T* scale, const T* shift, const NormGeometry& g,
                            int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (g.n * g.c * g.m > kParallelMin)
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const int64_t c = nc % g.c;
    for (int64_t i = 0; i < g.m; ++i) y[nc * g.m + i] = x[nc * g.m + i] * scale[c] + shift[c];
  }
}

template <typename T>
void batch_norm_backward(T* grad_x, T* grad_gamma, T* grad_beta, const T* grad_y, const T* x,
                         const T* gamma, const T* mean, const T* invstd, const NormGeometry& g,
                         int threads) {
  (void)threads;
  const T count = T(g.n * g.m);
#pragma omp parallel for schedule(static) num_threads(threads) if (g.n * g.c * g.m > kParallelMin)
  for (int64_t c = 0; c < g.c; ++c) {
    T sum_g = 0, sum_gx = 0;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t i = 0; i < g.m; ++i) {
        const int64_t k = (n * g.c + c) * g.m + i;
        sum_g += grad_y[k];
        sum_gx += grad_y[k] * (x[k] - mean[c]) * invstd[c];
      }
    if (grad_gamma) grad_gamma[c] = sum_gx;
    if (grad_beta) grad_beta[c] = sum_g;
    if (!grad_x) continue;
    const T factor = (gamma ? gamma[c] : T(1)) * invstd[c] / count;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t i = 0; i < g.m; ++i) {
        const int64_t k = (n * g.c + c) * g.m + i;
        const T xhat = (x[k] - mean[c]) * invstd[c];
        grad_x[k] = factor * (count * grad_y[k] - sum_g - xhat * sum_gx);
      }
  }
}

#define NNX_INSTANTIATE(T)                                                                          \
  template void batch_norm_forward_train<T>(T*, T*, T*, const T*, const T*, const T*,               \
                                            const NormGeometry&, T, int);                           \
  template void batch_norm_scale_shift<T>(T*, const T*, const T*, const T*, const NormGeometry&, int); \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, \
                                       const NormGeometry&, int);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx::kernels::ref
