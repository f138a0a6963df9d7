// Pooling over NCHW planes: the kernel-layer interface. Every kernel works plane by plane
// (N * C planes of H x W), so planes are the unit of parallelism and results never depend on the
// thread count.
#pragma once

#include <cstdint>

namespace nnx::kernels {

struct PoolGeometry {
  int64_t planes, h, w;      // input: planes of H x W
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t p, q;              // output height and width
};

struct PoolKernels {
  // y and indices (flat h * W + w of each window's maximum in its input plane; ties go to the
  // first position in row-major window order; padding never wins; NaN propagates).
  void (*max_forward)(float* y, int64_t* indices, const float* x, const PoolGeometry& g,
                      int threads);
  // grad_x (planes x H x W) = scatter of grad_y at indices, overwriting grad_x, when every index
  // lies in its own 2 x 2 window at stride 2 (g: sizes only, P = H / 2 and Q = W / 2): then
  // each window's four gradients are written at once, no zeroing pass. Returns false, grad_x
  // undefined, when some index lies elsewhere (the caller scatters in general).
  bool (*max_backward_2x2)(float* grad_x, const float* grad_y, const int64_t* indices,
                           const PoolGeometry& g, int threads);
};

namespace avx2 { const PoolKernels& pool_kernels(); }
namespace avx512 { const PoolKernels& pool_kernels(); }

namespace ref {
template <typename T>
void max_pool_forward(T* y, int64_t* indices, const T* x, const PoolGeometry& g, int threads);
// grad_x (planes x H x W) = scatter-add of grad_y at indices, overwriting grad_x.
template <typename T>
void max_pool_backward(T* grad_x, const T* grad_y, const int64_t* indices, const PoolGeometry& g,
                       int threads);
// Average over each window; the divisor is kh * kw (count_include_pad) or the number of input
// positions inside the window.
template <typename T>
void avg_pool_forward(T* y, const T* x, const PoolGeometry& g, bool count_include_pad, int threads);
template <typename T>
void avg_pool_backward(T* grad_x, const T* grad_y, const PoolGeometry& g, bool count_include_pad,
                       int threads);
// Output cell (i, j) averages input rows [floor(i H / P), ceil((i + 1) H / P)) and the columns
// likewise (PyTorch's adaptive pooling).
template <typename T>
void adaptive_avg_pool_forward(T* y, const T* x, const PoolGeometry& g, int threads);
template <typename T>
void adaptive_avg_pool_backward(T* grad_x, const T* grad_y, const PoolGeometry& g, int threads);
}  // namespace ref

}  // namespace nnx::kernels
