// Public C++ API of nnx's batch normalisation over (N, C, M) data (M = product of the spatial
// sizes, 1 for (N, C)), statistics per channel.
#pragma once

#include <cstdint>

namespace nnx {

// Training mode: per-channel mean and invstd = 1 / sqrt(biased var + eps), and
// y = (x - mean) invstd gamma + beta. gamma and beta may be null (1 and 0). Running statistics
// are the caller's business (they need only mean and the variance).
template <typename T>
void batch_norm_forward_train(T* y, T* mean, T* invstd, const T* x, const T* gamma, const T* beta,
                              int64_t n, int64_t c, int64_t m, T eps);
// Eval mode: y = (x - running_mean) / sqrt(running_var + eps) gamma + beta.
template <typename T>
void batch_norm_forward_eval(T* y, const T* x, const T* running_mean, const T* running_var,
                             const T* gamma, const T* beta, int64_t n, int64_t c, int64_t m, T eps);
// Gradients of the training-mode forward; grad_gamma / grad_beta may be null.
template <typename T>
void batch_norm_backward(T* grad_x, T* grad_gamma, T* grad_beta, const T* grad_y, const T* x,
                         const T* gamma, const T* mean, const T* invstd, int64_t n, int64_t c,
                         int64_t m);

}  // namespace nnx
