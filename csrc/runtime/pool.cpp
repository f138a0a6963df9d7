// Pooling entry points: check, then dispatch (max pooling forward has SIMD kernels; the rest runs
// the scalar kernels, which are fast enough next to the convolutions around them).
#include "nnx/pool.h"

#include <stdexcept>
#include <string>

#include "internal.h"

namespace nnx {
namespace {

// The SIMD kernels carry window positions in float lanes: exact below 2^24 per plane.
constexpr int64_t kExactInFloat = int64_t(1) << 24;

kernels::PoolGeometry geometry(const Pool2dShape& s) {
  check_pool2d_shape(s);
  return {s.planes, s.height, s.width, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
          s.pad_h, s.pad_w, s.out_height(), s.out_width()};
}

// The geometry of pooling defined by its sizes alone (adaptive pooling, backward scatters).
kernels::PoolGeometry adaptive(int64_t planes, int64_t h, int64_t w, int64_t p, int64_t q) {
  if (planes < 0 || h < 1 || w < 1 || p < 1 || q < 1)
    throw std::invalid_argument("pool2d: need input and output sizes >= 1, got input " +
                                std::to_string(h) + " x " + std::to_string(w) + ", output " +
                                std::to_string(p) + " x " + std::to_string(q));
  return {planes, h, w, 0, 0, 0, 0, 0, 0, p, q};
}

}  // namespace

int64_t Pool2dShape::out_height() const { return (height + 2 * pad_h - kernel_h) / stride_h + 1; }
int64_t Pool2dShape::out_width() const { return (width + 2 * pad_w - kernel_w) / stride_w + 1; }

void check_pool2d_shape(const Pool2dShape& s) {
  const auto pair = [](int64_t a, int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; };
  if (s.planes < 0 || s.height < 1 || s.width < 1)
    throw std::invalid_argument("pool2d: input planes of " + pair(s.height, s.width) + " must not be empty");
  // Far beyond any real window, and small enough that H + 2 * padding cannot overflow.
  constexpr int64_t kMax = int64_t(1) << 40;
  if (s.kernel_h > kMax || s.kernel_w > kMax || s.stride_h > kMax || s.stride_w > kMax ||
      s.pad_h > kMax || s.pad_w > kMax || s.height > kMax || s.width > kMax)
    throw std::invalid_argument("pool2d: sizes, kernel, stride and padding must be at most 2^40");
  if (s.kernel_h < 1 || s.kernel_w < 1)
    throw std::invalid_argument("pool2d: kernel size must be >= 1, got " + pair(s.kernel_h, s.kernel_w));
  if (s.stride_h < 1 || s.stride_w < 1)
    throw std::invalid_argument("pool2d: stride must be >= 1, got " + pair(s.stride_h, s.stride_w));
  if (s.pad_h < 0 || s.pad_w < 0 || 2 * s.pad_h > s.kernel_h || 2 * s.pad_w > s.kernel_w)
    throw std::invalid_argument("pool2d: padding " + pair(s.pad_h, s.pad_w) +
                                " must be between 0 and half the kernel " + pair(s.kernel_h, s.kernel_w));
  if (s.out_height() < 1 || s.out_width() < 1)
    throw std::invalid_argument("pool2d: kernel " + pair(s.kernel_h, s.kernel_w) +
                                " is larger than the padded input " +
                                pair(s.height + 2 * s.pad_h, s.width + 2 * s.pad_w));
}

template <typename T>
void max_pool2d_forward(T* y, int64_t* indices, const T* x, const Pool2dShape& shape) {
  const kernels::PoolGeometry g = geometry(shape);
  const int threads = get_num_threads();
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::pool); t && g.h * g.w < kExactInFloat)
    return t->max_forward((float*)y, indices, (const float*)x, g, threads);
  kernels::ref::max_pool_forward<T>(y, indices, x, g, threads);
}

template <typename T>
void max_pool2d_backward(T* grad_x, const T* grad_y, const int64_t* indices, int64_t planes,
                         int64_t height, int64_t width, int64_t out_h, int64_t out_w) {
  const kernels::PoolGeometry g = adaptive(planes, height, width, out_h, out_w);  // sizes only
  // 2 x 2 windows at stride 2 (the shapes allow it, and the kernel checks every index), rows of
  // at least 8 windows: shorter ones (LeNet's 5) leave most of a vector idle, and scattering
  // one gradient at a time is as fast.
  if (auto* t = runtime::float_kernels<T>(&runtime::KernelTable::pool);
      t && g.p == g.h / 2 && g.q == g.w / 2 && g.q >= 8 && g.h * g.w < kExactInFloat &&
      t->max_backward_2x2((float*)grad_x, (const float*)grad_y, indices, g, get_num_threads()))
    return;
  // Indices come from a forward of this shape; a bad one would write outside the plane.
  for (int64_t i = 0; i < g.planes * g.p * g.q; ++i)
    if (indices[i] < 0 || indices[i] >= g.h * g.w)
      throw std::out_of_range("max_pool2d_backward: index " + std::to_string(indices[i]) +
                              " at position " + std::to_string(i) + " is outside the " +
                              std::to_string(g.h) + " x " + std::to_string(g.w) + " plane");
  kernels::ref::max_pool_backward<T>(grad_x, grad_y, indices, g, get_num_threads());
}

template <typename T>
void avg_pool2d_forward(T* y, const T* x, const Pool2dShape& shape, bool count_include_pad) {
  kernels::ref::avg_pool_forward<T>(y, x, geometry(shape), count_include_pad, get_num_threads());
}

template <typename T>
void avg_pool2d_backward(T* grad_x, const T* grad_y, const Pool2dShape& shape, bool count_include_pad) {
  kernels::ref::avg_pool_backward<T>(grad_x, grad_y, geometry(shape), count_include_pad,
                                     get_num_threads());
}

template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, int64_t planes, int64_t h, int64_t w,
                                 int64_t p, int64_t q) {
  kernels::ref::adaptive_avg_pool_forward<T>(y, x, adaptive(planes, h, w, p, q), get_num_threads());
}

template <typename T>
void adaptive_avg_pool2d_backward(T* grad_x, const T* grad_y, int64_t planes, int64_t h, int64_t w,
                                  int64_t p, int64_t q) {
  kernels::ref::adaptive_avg_pool_backward<T>(grad_x, grad_y, adaptive(planes, h, w, p, q),
                                              get_num_threads());
}

#define NNX_INSTANTIATE(T)                                                                         \
  template void max_pool2d_forward<T>(T*, int64_t*, const T*, const Pool2dShape&);                 \
  template void max_pool2d_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t,   \
                                       int64_t, int64_t);                                          \
  template void avg_pool2d_forward<T>(T*, const T*, const Pool2dShape&, bool);                     \
  template void avg_pool2d_backward<T>(T*, const T*, const Pool2dShape&, bool);                    \
  template void adaptive_avg_pool2d_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t); \
  template void adaptive_avg_pool2d_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx
