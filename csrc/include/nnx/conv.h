// Public C++ API of nnx's convolution: 2-D cross-correlation over NCHW tensors, float (im2col +
// the SIMD GEMM) and double (the direct reference, for gradient checks). Arguments are checked
// (std::invalid_argument with the shapes) before any memory is touched.
#pragma once

#include <cstdint>

namespace nnx {

struct Conv2dShape {
  int64_t batch = 1, in_channels = 1, height = 1, width = 1;  // x: (N, C, H, W)
  int64_t out_channels = 1, kernel_h = 1, kernel_w = 1;       // w: (K, C, R, S)
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t out_height() const;  // P = (H + 2 pad - dil (R - 1) - 1) / stride + 1
  int64_t out_width() const;
};

// std::invalid_argument naming the problem if the shape is not a valid convolution (sizes,
// strides, padding, dilation, or a kernel larger than the padded input).
void check_conv2d_shape(const Conv2dShape& shape);

// y (N, K, P, Q) = conv(x, w) + b, then max(y, 0) if relu. b may be null.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& shape,
                    bool relu = false);

// Gradients of conv2d_forward (without relu) given grad_y (N, K, P, Q). Any of grad_x (N, C, H,
// W), grad_w (K, C, R, S), grad_b (K) may be null when not wanted. Results are bitwise identical
// for any thread count.
template <typename T>
void conv2d_backward(T* grad_x, T* grad_w, T* grad_b, const T* grad_y, const T* x, const T* w,
                     const Conv2dShape& shape);

}  // namespace nnx
