// Convolution entry points. float runs as im2col + GEMM over chunks of images; threads take whole
// chunks when there is at least one per thread, otherwise each chunk's GEMMs use every thread.
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

// At most this many partial weight gradients, summed at the end. Fixed, not the thread count, so
// that the summation order (and the result's bits) never depends on how many threads ran.
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

// Images side by side in one GEMM: enough for ~2048 columns, so that small images (LeNet's 10x10
// outputs) make one wide GEMM instead of many tiny ones, and large ones go one at a time.
// Depends on the shape only, never on the thread count.
constexpr int64_t kTargetColumns = 2048;

struct Chunking {
  int64_t images, count;  // images per chunk, number of chunks
};
Chunking chunking(const ConvGeometry& g) {
  const int64_t images = std::clamp<int64_t>((kTargetColumns + g.pq() - 1) / g.pq(), 1, g.n);
  return {images, (g.n + images - 1) / images};
}

// Whole chunks per thread when there are enough of them, else one chunk at a time with threaded
// GEMMs: either way each chunk's arithmetic is the same.
struct Split {
  int outer, inner;
};
Split split(int64_t chunks, int threads) {
  return chunks >= threads ? Split{threads, 1} : Split{1, threads};
}

// The col matrix (CRS x images * PQ) of images [n0, n0 + count): the image itself when a single
// pointwise image needs no copy.
const float* im2col_chunk(const kernels::ConvKernels& ck, const float* x, int64_t n0, int64_t count,
                          const ConvGeometry& g) {
  const int64_t image_size = g.c * g.h * g.w, cols = count * g.pq();
  if (count == 1 && g.is_pointwise()) return x + n0 * image_size;
  float* col = runtime::workspace_of<float>(Slot::col, size_t(g.crs() * cols));
  for (int64_t b = 0; b < count; ++b) ck.im2col(col + b * g.pq(), cols, x + (n0 + b) * image_size, g);
  return col;
}

void forward_f32(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g,
                 bool relu, int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  const int64_t crs = g.crs(), pq = g.pq();
  const Chunking chunks = chunking(g);
  const Split sp = split(chunks.count, threads);
  runtime::parallel_for(chunks.count, sp.outer, [&](int64_t ch) {
    const int64_t n0 = ch * chunks.images, count = std::min(chunks.images, g.n - n0);
    const int64_t cols = count * pq;
    const float* col = im2col_chunk(ck, x, n0, count, g);
    // out (K x cols) = w (K x CRS) @ col (CRS x cols) + b per row (+ relu), in one GEMM; a single
    // image's out is its slice of y already.
    float* out = count == 1 ? y + n0 * g.k * pq
                            : runtime::workspace_of<float>(Slot::chunk, size_t(g.k * cols));
    const SgemmProblem p{Trans::N, Trans::N, g.k, cols, crs, 1.0f, w, crs, col, cols, 0.0f, out,
                         cols, b, b ? BiasMode::row : BiasMode::none, relu};
    runtime::sgemm_checked(p, sp.inner);
    if (count > 1)  // (K, images, PQ) -> (images, K, PQ)
      for (int64_t i = 0; i < count; ++i)
        for (int64_t k = 0; k < g.k; ++k)
          std::copy_n(out + k * cols + i * pq, pq, y + ((n0 + i) * g.k + k) * pq);
  });
}

// dcol = w^T (CRS x K) @ dy (K x cols), folded back onto the chunk's images by col2im. dcol is
// made a few input channels at a time (col2im treats channels independently), in blocks small
// enough to stay in L2 between the GEMM that writes them and col2im that reads them: with few
// output channels the GEMM has little arithmetic per value written, and a dcol spilled to memory
// made it run at a tenth of its speed.
void input_grad_chunk(const kernels::ConvKernels& ck, float* gx, const float* w, const float* dy,
                      int64_t n0, int64_t count, const ConvGeometry& g, int threads) {
  const int64_t crs = g.crs(), rs = g.r * g.s, image_size = g.c * g.h * g.w;
  const int64_t cols = count * g.pq();
  if (count == 1 && g.is_pointwise()) {  // dcol is the image gradient itself
    const SgemmProblem p{Trans::T, Trans::N, crs, cols, g.k, 1.0f, w, crs, dy, cols, 0.0f,
                         gx + n0 * image_size, cols, nullptr, BiasMode::none, false};
    return runtime::sgemm_checked(p, threads);
  }
  constexpr int64_t kBlockFloats = 64 * 1024;  // 256 KiB of dcol per block
  const int64_t channels = std::clamp<int64_t>(kBlockFloats / (rs * cols), 1, g.c);
  float* dcol = runtime::workspace_of<float>(Slot::col_grad, size_t(channels * rs * cols));
  for (int64_t c0 = 0; c0 < g.c; c0 += channels) {
    ConvGeometry block = g;
    block.c = std::min(channels, g.c - c0);
    const SgemmProblem p{Trans::T, Trans::N, block.c * rs, cols, g.k, 1.0f, w + c0 * rs, crs,
                         dy, cols, 0.0f, dcol, cols, nullptr, BiasMode::none, false};
    runtime::sgemm_checked(p, threads);
    for (int64_t i = 0; i < count; ++i)
      ck.col2im(gx + (n0 + i) * image_size + c0 * g.h * g.w, dcol + i * g.pq(), cols, block);
  }
}

void backward_f32(float* gx, float* gw, float* gb, const float* gy, const float* x, const float* w,
                  const ConvGeometry& g, int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  const int64_t crs = g.crs(), pq = g.pq();
  const Chunking chunks = chunking(g);
  const int64_t groups = std::min(chunks.count, kWeightGradGroups);
  // Partial weight gradients, one per group of consecutive chunks, shared by the team.
  float* partial = gw ? runtime::workspace_of<float>(Slot::shared, size_t(groups * g.k * crs)) : nullptr;
  const Split sp = split(groups, threads);
  runtime::parallel_for(groups, sp.outer, [&](int64_t grp) {
    const int64_t first = chunks.count * grp / groups, last = chunks.count * (grp + 1) / groups;
    for (int64_t ch = first; ch < last; ++ch) {
      const int64_t n0 = ch * chunks.images, count = std::min(chunks.images, g.n - n0);
      const int64_t cols = count * pq;
      // dy of the chunk as one (K x cols) matrix: (images, K, PQ) -> (K, images, PQ).
      const float* dy = gy + n0 * g.k * pq;
      if (count > 1) {
        float* buf = runtime::workspace_of<float>(Slot::chunk, size_t(g.k * cols));
        for (int64_t i = 0; i < count; ++i)
          for (int64_t k = 0; k < g.k; ++k)
            std::copy_n(gy + ((n0 + i) * g.k + k) * pq, pq, buf + k * cols + i * pq);
        dy = buf;
      }
      if (gw) {
        // partial (K x CRS) (+)= dy (K x cols) @ col^T (cols x CRS)
        const float* col = im2col_chunk(ck, x, n0, count, g);
        const SgemmProblem p{Trans::N, Trans::T, g.k, crs, cols, 1.0f, dy, cols, col, cols,
                             ch == first ? 0.0f : 1.0f, partial + grp * g.k * crs, crs,
                             nullptr, BiasMode::none, false};
        runtime::sgemm_checked(p, sp.inner);
      }
      if (gx) input_grad_chunk(ck, gx, w, dy, n0, count, g, sp.inner);
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
