// Public C++ API of nnx's pooling over NCHW tensors, seen as `planes` = N * C planes of H x W.
// float uses the SIMD kernels of the active ISA where there are some; double the reference.
#pragma once

#include <cstdint>

namespace nnx {

struct Pool2dShape {
  int64_t planes = 1, height = 1, width = 1;  // input
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_height() const;  // (H + 2 pad - kernel) / stride + 1
  int64_t out_width() const;
};

// std::invalid_argument if the window does not fit: kernel and stride >= 1, 0 <= padding <=
// kernel / 2 (as PyTorch requires), output at least 1 x 1.
void check_pool2d_shape(const Pool2dShape& shape);

// y and the flat index (h * W + w) of each window's maximum in its plane.
template <typename T>
void max_pool2d_forward(T* y, int64_t* indices, const T* x, const Pool2dShape& shape);
// grad_x (planes, H, W) = scatter-add of grad_y (planes, out_h, out_w) at the forward's indices
// (std::out_of_range for an index outside its plane).
template <typename T>
void max_pool2d_backward(T* grad_x, const T* grad_y, const int64_t* indices, int64_t planes,
                         int64_t height, int64_t width, int64_t out_h, int64_t out_w);

// count_include_pad: divide by kernel_h * kernel_w (padding counts as zeros); otherwise by the
// number of input positions inside the window.
template <typename T>
void avg_pool2d_forward(T* y, const T* x, const Pool2dShape& shape, bool count_include_pad);
template <typename T>
void avg_pool2d_backward(T* grad_x, const T* grad_y, const Pool2dShape& shape, bool count_include_pad);

// Adaptive average pooling of planes x H x W down to planes x out_h x out_w (PyTorch's windows).
template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, int64_t planes, int64_t height, int64_t width,
                                 int64_t out_h, int64_t out_w);
template <typename T>
void adaptive_avg_pool2d_backward(T* grad_x, const T* grad_y, int64_t planes, int64_t height,
                                  int64_t width, int64_t out_h, int64_t out_w);

}  // namespace nnx
