// Public C++ API of nnx's neural-network kernels beyond the GEMM: activations, softmax, losses
// and fused optimizer updates, for float (SIMD kernels of the active ISA) and double (the scalar
// reference, used by gradient checks). Arrays are contiguous; outputs come first. Every call
// checks its arguments and throws std::invalid_argument (or std::out_of_range for a class index
// outside [0, classes)) before touching memory.
#pragma once

#include <cstdint>

namespace nnx {

enum class Activation : int { sigmoid, tanh, relu, leaky_relu, elu, softplus, hardsigmoid };
// `alpha`: the negative slope of leaky_relu, the scale of elu; ignored by the others.
template <typename T>
void activation_forward(Activation act, T* y, const T* x, int64_t n, T alpha = 0);
// grad_x = grad_y * f'(x), given x and y = f(x).
template <typename T>
void activation_backward(Activation act, T* grad_x, const T* grad_y, const T* x, const T* y,
                         int64_t n, T alpha = 0);

// Softmax (or log-softmax) of each of `rows` rows of `cols` values, numerically stable.
template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log);
template <typename T>
void softmax_backward(T* grad_x, const T* grad_y, const T* y, int64_t rows, int64_t cols, bool log);

// Cross-entropy of softmax(logits) against class indices (target_index) or a probability table
// (target_prob): exactly one is given. loss[rows]; probs[rows x cols] is saved for backward.
template <typename T>
void cross_entropy_forward(T* loss, T* probs, const T* logits, const int64_t* target_index,
                           const T* target_prob, int64_t rows, int64_t cols,
                           T label_smoothing = 0);
template <typename T>
void cross_entropy_backward(T* grad_logits, const T* grad_loss, const T* probs,
                            const int64_t* target_index, const T* target_prob, int64_t rows,
                            int64_t cols, T label_smoothing = 0);

// Elementwise losses: mse (x - t)^2, l1 |x - t|, bce_with_logits (stable binary cross-entropy).
enum class PointLoss : int { mse, l1, bce_with_logits };
template <typename T>
void point_loss_forward(PointLoss kind, T* loss, const T* input, const T* target, int64_t n);
template <typename T>
void point_loss_backward(PointLoss kind, T* grad_input, const T* grad, const T* input,
                         const T* target, int64_t n);

// Weston-Watkins multiclass hinge loss per sample (not divided by the number of classes).
template <typename T>
void multiclass_hinge_forward(T* loss, const T* scores, const int64_t* target, int64_t rows,
                              int64_t cols, T margin = 1);
template <typename T>
void multiclass_hinge_backward(T* grad_scores, const T* grad_loss, const T* scores,
                               const int64_t* target, int64_t rows, int64_t cols, T margin = 1);

// SGD with momentum, dampening, nesterov and L2 weight decay, as in PyTorch. `momentum_buffer`
// may be null only when momentum == 0; with first_step it is initialised to the gradient.
struct SgdOptions {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, first_step = false;
};
template <typename T>
void sgd_step(T* param, T* momentum_buffer, const T* grad, int64_t n, const SgdOptions& options);

// Adam (decoupled = false: L2 weight decay) or AdamW (decoupled = true), with bias correction and
// eps outside the square root. `step` counts from 1.
struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;
  int64_t step = 1;
};
template <typename T>
void adam_step(T* param, T* exp_avg, T* exp_avg_sq, const T* grad, int64_t n,
               const AdamOptions& options);

// The sum of x[i]^2 over n values, as a double: one tensor's part of the squared L2 norm that
// gradient clipping needs. Independent of the thread count (fixed blocks, summed in order).
template <typename T>
double sum_of_squares(const T* x, int64_t n);

}  // namespace nnx
