// Fused optimizer updates: one pass over a parameter, its gradient and its state, no temporaries.
#pragma once

#include <cstdint>

namespace nnx::kernels {

// Hyper-parameters are double so that the float64 reference path keeps them exact; the float32
// kernels round them once, when they broadcast them into registers.
struct SgdParams {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, first_step;  // first_step: the momentum buffer starts as the gradient
};

// bias_correction1/2 = 1 - beta^step, computed once per step by the caller.
struct AdamParams {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW: param *= 1 - lr * weight_decay; Adam: grad += weight_decay * param
  double bias_correction1, bias_correction2;
};

struct OptimKernels {
  void (*sgd_step)(float* param, float* momentum_buffer, const float* grad, int64_t n,
                   const SgdParams& p, int threads);
  void (*adam_step)(float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t n,
                    const AdamParams& p, int threads);
  // The sum of x[i]^2 over [0, n) (a gradient's share of the norm that clipping needs), as a
  // double. Squares are added in float lanes over runs of kSquaresRun elements and each run's
  // total into a double, so the relative error stays near 1e-6 whatever n.
  double (*sum_squares)(const float* x, int64_t n);
};

constexpr int64_t kSquaresRun = 256;

namespace avx2 { const OptimKernels& optim_kernels(); }
namespace avx512 { const OptimKernels& optim_kernels(); }

namespace ref {
template <typename T>
void sgd_step(T* param, T* momentum_buffer, const T* grad, int64_t n, const SgdParams& p,
              int threads);
template <typename T>
void adam_step(T* param, T* exp_avg, T* exp_avg_sq, const T* grad, int64_t n, const AdamParams& p,
               int threads);
// In double, in order of i.
template <typename T>
double sum_squares(const T* x, int64_t n);
}  // namespace ref

}  // namespace nnx::kernels
