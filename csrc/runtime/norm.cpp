// Batch-norm entry points: check, then dispatch float to the active ISA, double to the reference.
#include "nnx/norm.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "internal.h"

namespace nnx {
namespace {

kernels::NormGeometry geometry(int64_t n, int64_t c, int64_t m, const char* fn) {
  if (n < 1 || c < 1 || m < 1)
    throw std::invalid_argument(std::string(fn) + ": need batch, channels and positions >= 1, got (" +
                                std::to_string(n) + ", " + std::to_string(c) + ", " +
                                std::to_string(m) + ")");
  return {n, c, m};
}


}  // namespace

template <typename T>
void batch_norm_forward_train(T* y, T* mean, T* invstd, const T* x, const T* gamma, const T* beta,
                              int64_t n, int64_t c, int64_t m, T eps) {
  const kernels::NormGeometry g = geometry(n, c, m, "batch_norm");
  if (!(eps >= 0)) throw std::invalid_argument("batch_norm: eps must be >= 0");
  const int threads = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::norm))
    return t->forward_train((float*)y, (float*)mean, (float*)invstd, (const float*)x,
                            (const float*)gamma, (const float*)beta, g, float(eps), threads);
  kernels::ref::batch_norm_forward_train<T>(y, mean, invstd, x, gamma, beta, g, eps, threads);
}

template <typename T>
void batch_norm_forward_eval(T* y, const T* x, const T* running_mean, const T* running_var,
                             const T* gamma, const T* beta, int64_t n, int64_t c, int64_t m, T eps) {
  const kernels::NormGeometry g = geometry(n, c, m, "batch_norm");
  // Fold the running statistics and the affine parameters into one scale and shift per channel.
  std::vector<T> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) {
    if (!(running_var[k] + eps > 0))
      throw std::invalid_argument("batch_norm: running_var + eps must be > 0 (channel " +
                                  std::to_string(k) + ")");
    scale[size_t(k)] = (gamma ? gamma[k] : T(1)) / std::sqrt(running_var[k] + eps);
    shift[size_t(k)] = (beta ? beta[k] : T(0)) - running_mean[k] * scale[size_t(k)];
  }
  const int threads = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::norm))
    return t->scale_shift((float*)y, (const float*)x, (const float*)scale.data(),
                          (const float*)shift.data(), g, threads);
  kernels::ref::batch_norm_scale_shift<T>(y, x, scale.data(), shift.data(), g, threads);
}

template <typename T>
void batch_norm_backward(T* grad_x, T* grad_gamma, T* grad_beta, const T* grad_y, const T* x,
                         const T* gamma, const T* mean, const T* invstd, int64_t n, int64_t c,
                         int64_t m) {
  const kernels::NormGeometry g = geometry(n, c, m, "batch_norm_backward");
  const int threads = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::norm))
    return t->backward((float*)grad_x, (float*)grad_gamma, (float*)grad_beta, (const float*)grad_y,
                       (const float*)x, (const float*)gamma, (const float*)mean,
                       (const float*)invstd, g, threads);
  kernels::ref::batch_norm_backward<T>(grad_x, grad_gamma, grad_beta, grad_y, x, gamma, mean,
                                       invstd, g, threads);
}

#define NNX_INSTANTIATE(T)                                                                         \
  template void batch_norm_forward_train<T>(T*, T*, T*, const T*, const T*, const T*, int64_t,     \
                                            int64_t, int64_t, T);                                  \
  template void batch_norm_forward_eval<T>(T*, const T*, const T*, const T*, const T*, const T*,   \
                                           int64_t, int64_t, int64_t, T);                          \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,         \
                                       const T*, int64_t, int64_t, int64_t);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx
