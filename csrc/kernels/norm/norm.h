// Batch normalisation over (N, C, M) data (M = product of the spatial sizes, 1 for (N, C)):
// statistics per channel over N * M values. Channels are the unit of parallelism, and each
// channel's sums run in a fixed order, so results never depend on the thread count.
#pragma once

#include <cstdint>

namespace nnx::kernels {

struct NormGeometry {
  int64_t n, c, m;
};

struct NormKernels {
  // Training mode: mean and invstd = 1 / sqrt(biased var + eps) of each channel, and
  // y = (x - mean) * invstd * gamma + beta (gamma, beta may be null: 1 and 0).
  void (*forward_train)(float* y, float* mean, float* invstd, const float* x, const float* gamma,
                        const float* beta, const NormGeometry& g, float eps, int threads);
  // y = x * scale[c] + shift[c] (eval mode, with scale and shift folded from the running stats).
  void (*scale_shift)(float* y, const float* x, const float* scale, const float* shift,
                      const NormGeometry& g, int threads);
  // grad_x = gamma invstd / m (m g - sum(g) - xhat sum(g xhat)); grad_gamma = sum(g xhat),
  // grad_beta = sum(g) per channel (grad_gamma/grad_beta may be null).
  void (*backward)(float* grad_x, float* grad_gamma, float* grad_beta, const float* grad_y,
                   const float* x, const float* gamma, const float* mean, const float* invstd,
                   const NormGeometry& g, int threads);
};

namespace avx2 { const NormKernels& norm_kernels(); }
namespace avx512 { const NormKernels& norm_kernels(); }

namespace ref {
template <typename T>
void batch_norm_forward_train(T* y, T* mean, T* invstd, const T* x, const T* gamma, const T* beta,
                              const NormGeometry& g, T eps, int threads);
template <typename T>
void batch_norm_scale_shift(T* y, const T* x, const T* scale, const T* shift, const NormGeometry& g,
                            int threads);
template <typename T>
void batch_norm_backward(T* grad_x, T* grad_gamma, T* grad_beta, const T* grad_y, const T* x,
                         const T* gamma, const T* mean, const T* invstd, const NormGeometry& g,
                         int threads);
}  // namespace ref

}  // namespace nnx::kernels
