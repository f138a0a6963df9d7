// Convolution entry points. float runs as im2col + GEMM per image; threads take whole images
// when the batch has at least one per thread, otherwise each image's GEMMs use every thread.
// double (and NNX_ISA=ref) runs the direct reference convolution.
#include "nnx/conv.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "internal.h"
#include "parallel.h"

namespace nnx {
namespace {

using kernels::ConvGeometry;
using kernels::SgemmProblem;
using runtime::Slot;

// Number of partial weight gradients summed at the end. Fixed, not the thread count, so that the
// summation order (and the result's bits) never depends on how many threads ran.
constexpr int64_t kWeightGradGroups = 16;

int64_t out_size(int64_t size, int64_t kernel, int64_t stride, int64_t pad, int64_t dil) {
  return (size + 2 * pad - dil * (kernel - 1) - 1) / stride + 1;
}

ConvGeometry geometry(const Conv2dShape& s, const char* fn) {
  const auto fail = [fn](const std::string& what) {
    throw std::invalid_argument(std::string(fn) + ": " + what);
  };
  if (s.batch < 0 || s.in_channels < 1 || s.height < 1 || s.width < 1 || s.out_channels < 1)
    fail("input (" + std::to_string(s.batch) + ", " + std::to_string(s.in_channels) + ", " +
         std::to_string(s.height) + ", " + std::to_string(s.width) + ") and " +
         std::to_string(s.out_channels) + " output channels: need N >= 0 and C, H, W, K >= 1");
  if (s.kernel_h < 1 || s.kernel_w < 1) fail("kernel size must be >= 1");
  if (s.stride_h < 1 || s.stride_w < 1)
    fail("stride must be >= 1, got (" + std::to_string(s.stride_h) + ", " +
         std::to_string(s.stride_w) + ")");
  if (s.pad_h < 0 || s.pad_w < 0)
    fail("padding must be >= 0, got (" + std::to_string(s.pad_h) + ", " + std::to_string(s.pad_w) + ")");
  if (s.dilation_h < 1 || s.dilation_w < 1) fail("dilation must be >= 1");
  ConvGeometry g{s.batch, s.in_channels, s.height, s.width, s.out_channels, s.kernel_h,
                 s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h,
                 s.dilation_w, s.out_height(), s.out_width()};
  if (g.p < 1 || g.q < 1)
    fail("kernel (" + std::to_string(s.kernel_h) + ", " + std::to_string(s.kernel_w) +
         ") with dilation (" + std::to_string(s.dilation_h) + ", " + std::to_string(s.dilation_w) +
         ") is larger than the padded input (" + std::to_string(s.height + 2 * s.pad_h) + ", " +
         std::to_string(s.width + 2 * s.pad_w) + ")");
  return g;
}

// Whole images per thread when there are enough of them, else one image at a time with threaded
// GEMMs: either way each image's arithmetic is the same.
struct Split {
  int outer, inner;
};
Split split(int64_t images, int threads) {
  return images >= threads ? Split{threads, 1} : Split{1, threads};
}

void forward_f32(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g,
                 bool relu, int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  const int64_t crs = g.crs(), pq = g.pq();
  const Split sp = split(g.n, threads);
  runtime::parallel_for(g.n, sp.outer, [&](int64_t n) {
    const float* image = x + n * g.c * g.h * g.w;
    const float* col = image;
    if (!g.is_pointwise()) {
      float* buf = runtime::workspace_of<float>(Slot::col, size_t(crs * pq));
      ck.im2col(buf, image, g);
      col = buf;
    }
    // y_n (K x PQ) = w (K x CRS) @ col (CRS x PQ) + b per row (+ relu), in one GEMM.
    const SgemmProblem p{Trans::N, Trans::N, g.k, pq, crs, 1.0f, w, crs, col, pq, 0.0f,
                         y + n * g.k * pq, pq, b, b ? BiasMode::row : BiasMode::none, relu};
    runtime::sgemm_checked(p, sp.inner);
  });
}

void backward_f32(float* gx, float* gw, float* gb, const float* gy, const float* x, const float* w,
                  const ConvGeometry& g, int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  const int64_t crs = g.crs(), pq = g.pq(), image_size = g.c * g.h * g.w;
  const int64_t groups = std::min(g.n, kWeightGradGroups);
  // Partial weight gradients, one per group of consecutive images, shared by the team.
  float* partial = gw ? runtime::workspace_of<float>(Slot::shared, size_t(groups * g.k * crs)) : nullptr;
  const Split sp = split(groups, threads);
  runtime::parallel_for(groups, sp.outer, [&](int64_t grp) {
    const int64_t first = g.n * grp / groups, last = g.n * (grp + 1) / groups;
    for (int64_t n = first; n < last; ++n) {
      const float* dy = gy + n * g.k * pq;
      if (gw) {
        const float* col = x + n * image_size;
        if (!g.is_pointwise()) {
          float* buf = runtime::workspace_of<float>(Slot::col, size_t(crs * pq));
          ck.im2col(buf, col, g);
          col = buf;
        }
        // partial (K x CRS) (+)= dy_n (K x PQ) @ col^T (PQ x CRS)
        const SgemmProblem p{Trans::N, Trans::T, g.k, crs, pq, 1.0f, dy, pq, col, pq,
                             n == first ? 0.0f : 1.0f, partial + grp * g.k * crs, crs,
                             nullptr, BiasMode::none, false};
        runtime::sgemm_checked(p, sp.inner);
      }
      if (gx) {
        // dcol (CRS x PQ) = w^T (CRS x K) @ dy_n (K x PQ), then folded back onto the image.
        float* dst = g.is_pointwise() ? gx + n * image_size
                                      : runtime::workspace_of<float>(Slot::col_grad, size_t(crs * pq));
        const SgemmProblem p{Trans::T, Trans::N, crs, pq, g.k, 1.0f, w, crs, dy, pq, 0.0f, dst,
                             pq, nullptr, BiasMode::none, false};
        runtime::sgemm_checked(p, sp.inner);
        if (!g.is_pointwise()) ck.col2im(gx + n * image_size, dst, g);
      }
    }
  });
  if (gw) {  // gw = partial_0 + partial_1 + ... in that order, element by element
    const int64_t size = g.k * crs;
    std::copy(partial, partial + size, gw);
    for (int64_t grp = 1; grp < groups; ++grp) ck.accumulate(gw, partial + grp * size, size);
  }
  if (gb) {  // gb[k] = sum over images (in order) of the sum of row k of dy_n
    // The shared slot is free again: the partial weight gradients are summed by now.
    float* sums = runtime::workspace_of<float>(Slot::shared, size_t(g.n * g.k));
    ck.row_sums(sums, gy, g.n * g.k, pq);
    for (int64_t k = 0; k < g.k; ++k) {
      float acc = 0.0f;
      for (int64_t n = 0; n < g.n; ++n) acc += sums[n * g.k + k];
      gb[k] = acc;
    }
  }
}

template <typename T>
bool use_gemm_path() {
  if constexpr (!std::is_same_v<T, float>) return false;
  const runtime::KernelTable& t = runtime::kernel_table();
  return t.conv != nullptr && t.sgemm != nullptr;
}

}  // namespace

void check_conv2d_shape(const Conv2dShape& shape) { geometry(shape, "conv2d"); }

int64_t Conv2dShape::out_height() const { return out_size(height, kernel_h, stride_h, pad_h, dilation_h); }
int64_t Conv2dShape::out_width() const { return out_size(width, kernel_w, stride_w, pad_w, dilation_w); }

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& shape, bool relu) {
  const ConvGeometry g = geometry(shape, "conv2d");
  if (g.n == 0) return;
  const int threads = get_num_threads();
  if constexpr (std::is_same_v<T, float>) {
    if (use_gemm_path<T>()) return forward_f32(y, x, w, b, g, relu, threads);
  }
  kernels::ref::conv2d_forward<T>(y, x, w, b, g, relu, threads);
}

template <typename T>
void conv2d_backward(T* grad_x, T* grad_w, T* grad_b, const T* grad_y, const T* x, const T* w,
                     const Conv2dShape& shape) {
  const ConvGeometry g = geometry(shape, "conv2d_backward");
  if (g.n == 0) {  // no images: zero gradients for the parameters, nothing for the input
    if (grad_w) std::fill(grad_w, grad_w + g.k * g.crs(), T(0));
    if (grad_b) std::fill(grad_b, grad_b + g.k, T(0));
    return;
  }
  const int threads = get_num_threads();
  if constexpr (std::is_same_v<T, float>) {
    if (use_gemm_path<T>()) return backward_f32(grad_x, grad_w, grad_b, grad_y, x, w, g, threads);
  }
  kernels::ref::conv2d_backward<T>(grad_x, grad_w, grad_b, grad_y, x, w, g, threads);
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*,
                                    const Conv2dShape&, bool);
template void conv2d_forward<double>(double*, const double*, const double*, const double*,
                                     const Conv2dShape&, bool);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const Conv2dShape&);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const Conv2dShape&);

}  // namespace nnx
