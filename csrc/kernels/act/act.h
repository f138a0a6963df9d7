// Activation functions and softmax: the kernel-layer interface.
#pragma once

#include <cmath>
#include <cstdint>

namespace nnx::kernels {

enum class Act : int { sigmoid, tanh, relu, leaky_relu, elu, softplus, hardsigmoid };

// One ISA's entry points (float32). Shapes: elementwise over n values; softmax over `rows` rows
// of `cols` contiguous values. `log` selects log_softmax. Outputs first, then inputs.
struct ActKernels {
  void (*forward)(Act act, float* y, const float* x, int64_t n, float alpha, int threads);
  // grad_x = grad_y * f'(x), given x and y = f(x).
  void (*backward)(Act act, float* grad_x, const float* grad_y, const float* x, const float* y,
                   int64_t n, float alpha, int threads);
  void (*softmax_forward)(float* y, const float* x, int64_t rows, int64_t cols, bool log,
                          int threads);
  void (*softmax_backward)(float* grad_x, const float* grad_y, const float* y, int64_t rows,
                           int64_t cols, bool log, int threads);
};

namespace avx2 { const ActKernels& act_kernels(); }
namespace avx512 { const ActKernels& act_kernels(); }

// Scalar references, float and double, with the textbook formulas (see python/nnx/_kernels.py).
namespace ref {
// The logistic function; two branches so that exp never overflows.
template <typename T>
T sigmoid(T x) {
  const T e = std::exp(-std::fabs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

template <typename T>
void act_forward(Act act, T* y, const T* x, int64_t n, T alpha, int threads);
template <typename T>
void act_backward(Act act, T* grad_x, const T* grad_y, const T* x, const T* y, int64_t n, T alpha,
                  int threads);
template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log, int threads);
template <typename T>
void softmax_backward(T* grad_x, const T* grad_y, const T* y, int64_t rows, int64_t cols, bool log,
                      int threads);
}  // namespace ref

}  // namespace nnx::kernels
