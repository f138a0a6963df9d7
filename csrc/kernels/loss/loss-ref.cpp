// Scalar reference losses, float and double.
#include <algorithm>
#include <cmath>

#include "loss/loss.h"

namespace nnx::kernels::ref {
namespace {

// Log-sum-exp of a row, and its maximum (stable form).
template <typename T>
T logsumexp(const T* x, int64_t cols, T* max_out) {
  T mx = x[0];
  for (int64_t j = 1; j < cols; ++j) mx = std::max(mx, x[j]);
  T sum = 0;
  for (int64_t j = 0; j < cols; ++j) sum += std::exp(x[j] - mx);
  *max_out = mx;
  return mx + std::log(sum);
}

// q_j: the (smoothed) target probability of class j in row r.
template <typename T>
T target_q(const int64_t* index, const T* prob, int64_t r, int64_t j, int64_t cols, T smoothing) {
  const T q = index ? T(index[r] == j) : prob[r * cols + j];
  return (1 - smoothing) * q + smoothing / T(cols);
}

}  // namespace

template <typename T>
void cross_entropy_forward(T* loss, T* probs, const T* logits, const int64_t* target_index,
                           const T* target_prob, int64_t rows, int64_t cols, T smoothing,
                           int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * cols;
    T mx;
    const T lse = logsumexp(x, cols, &mx);
    T l = 0;
    for (int64_t j = 0; j < cols; ++j) {
      l += target_q(target_index, target_prob, r, j, cols, smoothing) * (lse - x[j]);
      probs[r * cols + j] = std::exp(x[j] - lse);
    }
    loss[r] = l;
  }
}

template <typename T>
void cross_entropy_backward(T* grad_logits, const T* grad_loss, const T* probs,
                            const int64_t* target_index, const T* target_prob, int64_t rows,
                            int64_t cols, T smoothing, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      grad_logits[r * cols + j] =
          grad_loss[r] * (probs[r * cols + j] -
                          target_q(target_index, target_prob, r, j, cols, smoothing));
}

template <typename T>
void point_forward(PointLoss kind, T* loss, const T* input, const T* target, int64_t n,
                   int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T x = input[i], t = target[i];
    switch (kind) {
      case PointLoss::mse: loss[i] = (x - t) * (x - t); break;
      case PointLoss::l1: loss[i] = std::fabs(x - t); break;
      case PointLoss::bce_with_logits:
        loss[i] = std::max(x, T(0)) - x * t + std::log1p(std::exp(-std::fabs(x)));
        break;
    }
  }
}

template <typename T>
void point_backward(PointLoss kind, T* grad_input, const T* grad, const T* input, const T* target,
                    int64_t n, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T x = input[i], t = target[i];
    T d = 0;
    switch (kind) {
      case PointLoss::mse: d = 2 * (x - t); break;
      case PointLoss::l1: d = x > t ? T(1) : x < t ? T(-1) : T(0); break;
      case PointLoss::bce_with_logits: {
        const T e = std::exp(-std::fabs(x));
        d = (x >= 0 ? 1 / (1 + e) : e / (1 + e)) - t;
        break;
      }
    }
    grad_input[i] = grad[i] * d;
  }
}

template <typename T>
void hinge_forward(T* loss, const T* scores, const int64_t* target, int64_t rows, int64_t cols,
                   T margin, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = scores + r * cols;
    const T sy = s[target[r]];
    T l = 0;
    for (int64_t j = 0; j < cols; ++j)
      if (j != target[r]) l += std::max(T(0), s[j] - sy + margin);
    loss[r] = l;
  }
}

template <typename T>
void hinge_backward(T* grad_scores, const T* grad_loss, const T* scores, const int64_t* target,
                    int64_t rows, int64_t cols, T margin, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = scores + r * cols;
    T* g = grad_scores + r * cols;
    const T sy = s[target[r]];
    T active = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const bool on = j != target[r] && s[j] - sy + margin > 0;
      g[j] = on ? grad_loss[r] : T(0);
      active += on;
    }
    g[target[r]] = -grad_loss[r] * active;
  }
}

#define NNX_INSTANTIATE(T)                                                                       \
  template void cross_entropy_forward<T>(T*, T*, const T*, const int64_t*, const T*, int64_t,   \
                                         int64_t, T, int);                                       \
  template void cross_entropy_backward<T>(T*, const T*, const T*, const int64_t*, const T*,     \
                                          int64_t, int64_t, T, int);                             \
  template void point_forward<T>(PointLoss, T*, const T*, const T*, int64_t, int);              \
  template void point_backward<T>(PointLoss, T*, const T*, const T*, const T*, int64_t, int);   \
  template void hinge_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, T, int);       \
  template void hinge_backward<T>(T*, const T*, const T*, const int64_t*, int64_t, int64_t, T,  \
                                  int);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx::kernels::ref
