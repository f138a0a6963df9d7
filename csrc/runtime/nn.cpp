// Public entry points of the activation, loss and optimizer kernels: check, then dispatch float
// to the active ISA's table (the reference when it has none) and double to the reference.
#include "nnx/nn.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "internal.h"

namespace nnx {
namespace {

namespace k = kernels;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

void check_size(const char* fn, int64_t n) {
  require(n >= 0, std::string(fn) + ": size must be >= 0, got " + std::to_string(n));
}

void check_rows(const char* fn, int64_t rows, int64_t cols) {
  require(rows >= 0 && cols >= 1, std::string(fn) + ": need rows >= 0 and classes >= 1, got " +
                                      std::to_string(rows) + " x " + std::to_string(cols));
}

void check_targets(const char* fn, const int64_t* target, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    if (target[r] < 0 || target[r] >= cols)
      throw std::out_of_range(std::string(fn) + ": target " + std::to_string(target[r]) +
                              " at position " + std::to_string(r) + " is not a class index in [0, " +
                              std::to_string(cols) + ")");
}

template <typename T>
void check_ce(const char* fn, const int64_t* index, const T* prob, int64_t rows, int64_t cols,
              T smoothing) {
  check_rows(fn, rows, cols);
  require((index == nullptr) != (prob == nullptr),
          std::string(fn) + ": give exactly one of class indices and probabilities");
  require(smoothing >= 0 && smoothing <= 1,
          std::string(fn) + ": label_smoothing must be in [0, 1], got " + std::to_string(smoothing));
  if (index) check_targets(fn, index, rows, cols);
}

k::Act to_kernel(Activation a) { return static_cast<k::Act>(static_cast<int>(a)); }
k::PointLoss to_kernel(PointLoss p) { return static_cast<k::PointLoss>(static_cast<int>(p)); }


}  // namespace

template <typename T>
void activation_forward(Activation act, T* y, const T* x, int64_t n, T alpha) {
  check_size("activation_forward", n);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::act))
    return t->forward(to_kernel(act), (float*)y, (const float*)x, n, float(alpha), th);
  k::ref::act_forward<T>(to_kernel(act), y, x, n, alpha, th);
}

template <typename T>
void activation_backward(Activation act, T* gx, const T* gy, const T* x, const T* y, int64_t n,
                         T alpha) {
  check_size("activation_backward", n);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::act))
    return t->backward(to_kernel(act), (float*)gx, (const float*)gy, (const float*)x,
                       (const float*)y, n, float(alpha), th);
  k::ref::act_backward<T>(to_kernel(act), gx, gy, x, y, n, alpha, th);
}

template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log) {
  check_rows("softmax", rows, cols);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::act))
    return t->softmax_forward((float*)y, (const float*)x, rows, cols, log, th);
  k::ref::softmax_forward<T>(y, x, rows, cols, log, th);
}

template <typename T>
void softmax_backward(T* gx, const T* gy, const T* y, int64_t rows, int64_t cols, bool log) {
  check_rows("softmax_backward", rows, cols);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::act))
    return t->softmax_backward((float*)gx, (const float*)gy, (const float*)y, rows, cols, log, th);
  k::ref::softmax_backward<T>(gx, gy, y, rows, cols, log, th);
}

template <typename T>
void cross_entropy_forward(T* loss, T* probs, const T* logits, const int64_t* index, const T* prob,
                           int64_t rows, int64_t cols, T smoothing) {
  check_ce("cross_entropy", index, prob, rows, cols, smoothing);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::loss))
    return t->cross_entropy_forward((float*)loss, (float*)probs, (const float*)logits, index,
                                    (const float*)prob, rows, cols, float(smoothing), th);
  k::ref::cross_entropy_forward<T>(loss, probs, logits, index, prob, rows, cols, smoothing, th);
}

template <typename T>
void cross_entropy_backward(T* grad, const T* grad_loss, const T* probs, const int64_t* index,
                            const T* prob, int64_t rows, int64_t cols, T smoothing) {
  check_ce("cross_entropy_backward", index, prob, rows, cols, smoothing);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::loss))
    return t->cross_entropy_backward((float*)grad, (const float*)grad_loss, (const float*)probs,
                                     index, (const float*)prob, rows, cols, float(smoothing), th);
  k::ref::cross_entropy_backward<T>(grad, grad_loss, probs, index, prob, rows, cols, smoothing, th);
}

template <typename T>
void point_loss_forward(PointLoss kind, T* loss, const T* input, const T* target, int64_t n) {
  check_size("point_loss_forward", n);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::loss))
    return t->point_forward(to_kernel(kind), (float*)loss, (const float*)input,
                            (const float*)target, n, th);
  k::ref::point_forward<T>(to_kernel(kind), loss, input, target, n, th);
}

template <typename T>
void point_loss_backward(PointLoss kind, T* grad_input, const T* grad, const T* input,
                         const T* target, int64_t n) {
  check_size("point_loss_backward", n);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::loss))
    return t->point_backward(to_kernel(kind), (float*)grad_input, (const float*)grad,
                             (const float*)input, (const float*)target, n, th);
  k::ref::point_backward<T>(to_kernel(kind), grad_input, grad, input, target, n, th);
}

template <typename T>
void multiclass_hinge_forward(T* loss, const T* scores, const int64_t* target, int64_t rows,
                              int64_t cols, T margin) {
  check_rows("multiclass_hinge_loss", rows, cols);
  check_targets("multiclass_hinge_loss", target, rows, cols);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::loss))
    return t->hinge_forward((float*)loss, (const float*)scores, target, rows, cols, float(margin), th);
  k::ref::hinge_forward<T>(loss, scores, target, rows, cols, margin, th);
}

template <typename T>
void multiclass_hinge_backward(T* grad, const T* grad_loss, const T* scores, const int64_t* target,
                               int64_t rows, int64_t cols, T margin) {
  check_rows("multiclass_hinge_loss", rows, cols);
  check_targets("multiclass_hinge_loss", target, rows, cols);
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::loss))
    return t->hinge_backward((float*)grad, (const float*)grad_loss, (const float*)scores, target,
                             rows, cols, float(margin), th);
  k::ref::hinge_backward<T>(grad, grad_loss, scores, target, rows, cols, margin, th);
}

template <typename T>
void sgd_step(T* param, T* buf, const T* grad, int64_t n, const SgdOptions& o) {
  check_size("sgd_step", n);
  require(o.lr >= 0, "sgd_step: lr must be >= 0, got " + std::to_string(o.lr));
  require(o.momentum >= 0, "sgd_step: momentum must be >= 0, got " + std::to_string(o.momentum));
  require(o.weight_decay >= 0, "sgd_step: weight_decay must be >= 0");
  require(o.momentum == 0 || buf != nullptr, "sgd_step: momentum needs a momentum buffer");
  require(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
          "sgd_step: nesterov needs momentum > 0 and dampening == 0");
  const k::SgdParams p{o.lr, o.momentum, o.dampening, o.weight_decay, o.nesterov, o.first_step};
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::optim))
    return t->sgd_step((float*)param, (float*)buf, (const float*)grad, n, p, th);
  k::ref::sgd_step<T>(param, buf, grad, n, p, th);
}

template <typename T>
void adam_step(T* param, T* m, T* v, const T* grad, int64_t n, const AdamOptions& o) {
  check_size("adam_step", n);
  require(o.lr >= 0, "adam_step: lr must be >= 0, got " + std::to_string(o.lr));
  require(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1,
          "adam_step: betas must be in [0, 1), got (" + std::to_string(o.beta1) + ", " +
              std::to_string(o.beta2) + ")");
  require(o.eps >= 0, "adam_step: eps must be >= 0");
  require(o.weight_decay >= 0, "adam_step: weight_decay must be >= 0");
  require(o.step >= 1, "adam_step: step counts from 1, got " + std::to_string(o.step));
  const k::AdamParams p{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.decoupled,
                        1.0 - std::pow(o.beta1, double(o.step)),
                        1.0 - std::pow(o.beta2, double(o.step))};
  const int th = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::optim))
    return t->adam_step((float*)param, (float*)m, (float*)v, (const float*)grad, n, p, th);
  k::ref::adam_step<T>(param, m, v, grad, n, p, th);
}

template <typename T>
double sum_of_squares(const T* x, int64_t n) {
  check_size("sum_of_squares", n);
  // Blocks of a fixed size (whole runs of the kernel), each summed by one thread, the block
  // totals added in order: the result does not depend on the thread count.
  constexpr int64_t kBlock = 256 * k::kSquaresRun;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const auto* simd = runtime::float_kernels<T>(&runtime::KernelTable::optim);
  const auto block_sum = [&](int64_t i) {
    const int64_t b = i * kBlock, len = std::min(n, b + kBlock) - b;
    if (simd) return simd->sum_squares(reinterpret_cast<const float*>(x) + b, len);
    return k::ref::sum_squares<T>(x + b, len);
  };
  if (blocks <= 1) return blocks ? block_sum(0) : 0.0;
  std::vector<double> totals(size_t(blocks), 0.0);
  const int th = int(std::min<int64_t>(get_num_threads(), blocks));
  (void)th;
#pragma omp parallel for schedule(static) num_threads(th) if (th > 1)
  for (int64_t i = 0; i < blocks; ++i) totals[size_t(i)] = block_sum(i);
  double total = 0;
  for (double t : totals) total += t;
  return total;
}

#define NNX_INSTANTIATE(T)                                                                        \
  template void activation_forward<T>(Activation, T*, const T*, int64_t, T);                     \
  template void activation_backward<T>(Activation, T*, const T*, const T*, const T*, int64_t, T); \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t, bool);                         \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, bool);              \
  template void cross_entropy_forward<T>(T*, T*, const T*, const int64_t*, const T*, int64_t,     \
                                         int64_t, T);                                             \
  template void cross_entropy_backward<T>(T*, const T*, const T*, const int64_t*, const T*,       \
                                          int64_t, int64_t, T);                                   \
  template void point_loss_forward<T>(PointLoss, T*, const T*, const T*, int64_t);                \
  template void point_loss_backward<T>(PointLoss, T*, const T*, const T*, const T*, int64_t);     \
  template void multiclass_hinge_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, T);   \
  template void multiclass_hinge_backward<T>(T*, const T*, const T*, const int64_t*, int64_t,     \
                                             int64_t, T);                                         \
  template void sgd_step<T>(T*, T*, const T*, int64_t, const SgdOptions&);                        \
  template void adam_step<T>(T*, T*, T*, const T*, int64_t, const AdamOptions&);                  \
  template double sum_of_squares<T>(const T*, int64_t);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx
