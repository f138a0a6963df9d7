// Scalar reference activations and softmax, float and double: the textbook formulas.
#include <algorithm>
#include <cmath>

#include "act/act.h"

namespace nnx::kernels::ref {
namespace {

template <typename T>
T forward_one(Act act, T x, T alpha) {
  switch (act) {
    case Act::sigmoid: return sigmoid(x);
    case Act::tanh: return std::tanh(x);
    case Act::relu: return x > 0 || std::isnan(x) ? x : T(0);
    case Act::leaky_relu: return x > 0 ? x : alpha * x;
    case Act::elu: return x > 0 ? x : alpha * std::expm1(x);
    case Act::softplus: return x > 20 ? x : std::max(x, T(0)) + std::log1p(std::exp(-std::fabs(x)));
    case Act::hardsigmoid: return std::isnan(x) ? x : std::min(std::max(x + 3, T(0)), T(6)) / 6;
  }
  return x;
}

template <typename T>
T derivative(Act act, T x, T y, T alpha) {
  switch (act) {
    case Act::sigmoid: return y * (1 - y);
    case Act::tanh: return 1 - y * y;
    case Act::relu: return x > 0 ? T(1) : T(0);
    case Act::leaky_relu: return x > 0 ? T(1) : alpha;
    case Act::elu: return x > 0 ? T(1) : y + alpha;
    case Act::softplus: return x > 20 ? T(1) : sigmoid(x);
    case Act::hardsigmoid: return x > -3 && x < 3 ? T(1) / 6 : T(0);
  }
  return 0;
}

}  // namespace

template <typename T>
void act_forward(Act act, T* y, const T* x, int64_t n, T alpha, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = forward_one(act, x[i], alpha);
}

template <typename T>
void act_backward(Act act, T* grad_x, const T* grad_y, const T* x, const T* y, int64_t n, T alpha,
                  int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) grad_x[i] = grad_y[i] * derivative(act, x[i], y[i], alpha);
}

template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mx = xr[0];
    for (int64_t j = 1; j < cols; ++j) mx = std::max(mx, xr[j]);
    T sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(xr[j] - mx);
    for (int64_t j = 0; j < cols; ++j)
      yr[j] = log ? xr[j] - mx - std::log(sum) : std::exp(xr[j] - mx) / sum;
  }
}

template <typename T>
void softmax_backward(T* grad_x, const T* grad_y, const T* y, int64_t rows, int64_t cols, bool log,
                      int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = grad_y + r * cols;
    const T* yr = y + r * cols;
    T* gx = grad_x + r * cols;
    T s = 0;  // softmax: sum(g * y); log_softmax: sum(g)
    for (int64_t j = 0; j < cols; ++j) s += log ? g[j] : g[j] * yr[j];
    for (int64_t j = 0; j < cols; ++j) gx[j] = log ? g[j] - std::exp(yr[j]) * s : yr[j] * (g[j] - s);
  }
}

#define NNX_INSTANTIATE(T)                                                                      \
  template void act_forward<T>(Act, T*, const T*, int64_t, T, int);                            \
  template void act_backward<T>(Act, T*, const T*, const T*, const T*, int64_t, T, int);       \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t, bool, int);                 \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, bool, int);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx::kernels::ref
