// Losses: the kernel-layer interface. Forward kernels write one loss per sample (or per element);
// the reduction (mean/sum/none) happens above. Class targets are int64 and already validated.
#pragma once

#include <cstdint>

namespace nnx::kernels {

enum class PointLoss : int { mse, l1, bce_with_logits };

struct LossKernels {
  // Fused log-softmax + NLL over rows of logits (rows x cols). Targets are class indices
  // (`target_index`, rows values) or a probability table (`target_prob`, rows x cols): exactly
  // one is non-null. Writes loss[rows] and probs[rows x cols] = softmax(logits) for backward.
  void (*cross_entropy_forward)(float* loss, float* probs, const float* logits,
                                const int64_t* target_index, const float* target_prob,
                                int64_t rows, int64_t cols, float label_smoothing, int threads);
  // grad_logits = grad_loss[i] * (probs - q) with q the (smoothed) target distribution.
  void (*cross_entropy_backward)(float* grad_logits, const float* grad_loss, const float* probs,
                                 const int64_t* target_index, const float* target_prob,
                                 int64_t rows, int64_t cols, float label_smoothing, int threads);
  void (*point_forward)(PointLoss kind, float* loss, const float* input, const float* target,
                        int64_t n, int threads);
  void (*point_backward)(PointLoss kind, float* grad_input, const float* grad, const float* input,
                         const float* target, int64_t n, int threads);
  // Weston-Watkins multiclass hinge: loss[i] = sum_{j != y_i} max(0, s_ij - s_iy + margin).
  void (*hinge_forward)(float* loss, const float* scores, const int64_t* target, int64_t rows,
                        int64_t cols, float margin, int threads);
  void (*hinge_backward)(float* grad_scores, const float* grad_loss, const float* scores,
                         const int64_t* target, int64_t rows, int64_t cols, float margin,
                         int threads);
};

namespace avx2 { const LossKernels& loss_kernels(); }
namespace avx512 { const LossKernels& loss_kernels(); }

namespace ref {
template <typename T>
void cross_entropy_forward(T* loss, T* probs, const T* logits, const int64_t* target_index,
                           const T* target_prob, int64_t rows, int64_t cols, T label_smoothing,
                           int threads);
template <typename T>
void cross_entropy_backward(T* grad_logits, const T* grad_loss, const T* probs,
                            const int64_t* target_index, const T* target_prob, int64_t rows,
                            int64_t cols, T label_smoothing, int threads);
template <typename T>
void point_forward(PointLoss kind, T* loss, const T* input, const T* target, int64_t n, int threads);
template <typename T>
void point_backward(PointLoss kind, T* grad_input, const T* grad, const T* input, const T* target,
                    int64_t n, int threads);
template <typename T>
void hinge_forward(T* loss, const T* scores, const int64_t* target, int64_t rows, int64_t cols,
                   T margin, int threads);
template <typename T>
void hinge_backward(T* grad_scores, const T* grad_loss, const T* scores, const int64_t* target,
                    int64_t rows, int64_t cols, T margin, int threads);
}  // namespace ref

}  // namespace nnx::kernels
