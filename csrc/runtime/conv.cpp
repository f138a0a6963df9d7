// Convolution entry points. float stride-1 convolutions run the direct kernels where they apply
// (forward, input gradient as the transposed convolution, weight gradient); the rest runs as
// im2col + GEMM over chunks of images, threads taking whole chunks when there is at least one per
// thread, otherwise each chunk's GEMMs using every thread. double (and NNX_ISA=ref) runs the
// direct reference convolution.
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

// In 128 bits: with absurd padding or dilation the int64 arithmetic would overflow (and a wrapped
// size would let the kernels write out of bounds). geometry() rejects what does not fit.
int64_t out_size(int64_t size, int64_t kernel, int64_t stride, int64_t pad, int64_t dil) {
  if (stride < 1) return 0;
  const __int128 span = __int128(size) + 2 * __int128(pad) - __int128(dil) * (kernel - 1) - 1;
  const __int128 out = span < 0 ? 0 : span / stride + 1;  // a kernel larger than the input: 0
  return out > (__int128(1) << 40) ? int64_t(1) << 41 : int64_t(out);
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
  constexpr int64_t kMax = int64_t(1) << 40;  // far beyond any real convolution
  if (s.stride_h > kMax || s.stride_w > kMax || s.pad_h > kMax || s.pad_w > kMax ||
      s.dilation_h > kMax || s.dilation_w > kMax)
    fail("stride, padding and dilation must be at most 2^40");
  ConvGeometry g{s.batch, s.in_channels, s.height, s.width, s.out_channels, s.kernel_h,
                 s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h,
                 s.dilation_w, s.out_height(), s.out_width()};
  if (g.p > kMax || g.q > kMax || g.p * g.q > kMax)
    fail("the output (" + std::to_string(g.p) + " x " + std::to_string(g.q) + " per map) is too large");
  if (g.p < 1 || g.q < 1)
    fail("kernel (" + std::to_string(s.kernel_h) + ", " + std::to_string(s.kernel_w) +
         ") with dilation (" + std::to_string(s.dilation_h) + ", " + std::to_string(s.dilation_w) +
         ") is larger than the padded input (" + std::to_string(s.height + 2 * s.pad_h) + ", " +
         std::to_string(s.width + 2 * s.pad_w) + ")");
  return g;
}

// Up to this many filters, the weight gradient of a chunk is computed by dot products of rows
// read in place (row_dots, or weight_grad_wide straight from the images in the wide layout): a
// packed GEMM with so few rows of output spends more time packing its operands than multiplying.
constexpr int64_t kFewFilters = 32;

// How a convolution's GEMMs see the images. Stride-1 convolutions whose output rows are nearly
// as wide as the padded input use the wide layout of ConvKernels::im2col_wide: each (padded)
// image gives P * Wp columns whose col rows are contiguous runs of the image, copied at memory
// speed, where the compact layout (P * Q columns) copies rows of Q floats. The price is Wp / Q
// more GEMM columns, whose junk results are dropped. Other convolutions use the compact layout.
struct Layout {
  bool wide;
  ConvGeometry padded;  // wide: the geometry over the padded image (no padding left)
  int64_t width;        // GEMM columns per image
  int64_t images;       // images per chunk
  int64_t chunks;
};

// Images side by side in one GEMM: up to ~2048 columns, so that small images make one wide GEMM
// instead of many tiny ones, and large ones go one at a time; fewer when the col matrix would
// outgrow half of L2 (it is written, then read at once by the GEMM). Depends on the shape only,
// never on the thread count.
constexpr int64_t kTargetColumns = 2048, kColFloats = 128 * 1024;

Layout layout(const ConvGeometry& g) {
  Layout l{};
  // Wide when its junk columns are at most an eighth of the GEMM's: 32x32 images with 3x3
  // filters (2 of 34) or LeNet's first layer (4 of 32), not its second (4 of 14), whose
  // 10-float rows the compact layout's unpadded im2col moves as one masked vector each.
  const int64_t padded_w = g.w + 2 * g.pad_w;
  l.wide = g.stride_h == 1 && g.stride_w == 1 && !g.is_pointwise() &&
           8 * (padded_w - g.q) <= padded_w;
  l.padded = g;
  if (l.wide) {
    l.padded.h = g.h + 2 * g.pad_h, l.padded.w = g.w + 2 * g.pad_w;
    l.padded.pad_h = l.padded.pad_w = 0;
  }
  l.width = l.wide ? g.p * l.padded.w : g.pq();
  const int64_t columns = std::clamp<int64_t>(kColFloats / g.crs(), 256, kTargetColumns);
  l.images = std::clamp<int64_t>((columns + l.width - 1) / l.width, 1, g.n);
  l.chunks = (g.n + l.images - 1) / l.images;
  // As many images in every chunk as can be (64 images as 8 x 8, not 7 x 9 + 1): chunks are
  // what threads share.
  l.images = (g.n + l.chunks - 1) / l.chunks;
  return l;
}

bool has_padding(const ConvGeometry& g) { return g.pad_h != 0 || g.pad_w != 0; }

// Whole chunks per thread when there are enough of them, else one chunk at a time with threaded
// GEMMs: either way each chunk's arithmetic is the same.
struct Split {
  int outer, inner;
};
Split split(int64_t chunks, int threads) {
  return chunks >= threads ? Split{threads, 1} : Split{1, threads};
}

// Images [n, n + count) of x with zero padding around each plane, one after another in the
// calling thread's `slot` (x itself when there is no padding).
// p: the padded geometry.
const float* padded_images(const kernels::ConvKernels& ck, const float* x, int64_t n,
                           int64_t count, const ConvGeometry& g, const ConvGeometry& p,
                           Slot slot) {
  const float* images = x + n * g.c * g.h * g.w;
  if (!has_padding(g)) return images;
  const int64_t planes = count * g.c, plane = p.h * p.w;
  float* out = runtime::workspace_of<float>(slot, size_t(planes * plane));
  std::fill(out, out + planes * plane, 0.0f);
  for (int64_t i = 0; i < planes; ++i)
    ck.copy_rows(out + i * plane + g.pad_h * p.w + g.pad_w, p.w, images + i * g.h * g.w, g.w, g.h,
                 g.w, g.w);
  return out;
}

// The col matrix (CRS x images * width) of images [n0, n0 + count): the image itself when a single
// pointwise image needs no copy.
const float* im2col_chunk(const kernels::ConvKernels& ck, const float* x, int64_t n0, int64_t count,
                          const ConvGeometry& g, const Layout& l) {
  const int64_t image_size = g.c * g.h * g.w, cols = count * l.width;
  if (count == 1 && g.is_pointwise()) return x + n0 * image_size;
  float* col = runtime::workspace_of<float>(Slot::col, size_t(g.crs() * cols));
  for (int64_t b = 0; b < count; ++b) {
    if (l.wide)
      ck.im2col_wide(col + b * l.width, cols,
                     padded_images(ck, x, n0 + b, 1, g, l.padded, Slot::pad), l.padded);
    else
      ck.im2col(col + b * l.width, cols, x + (n0 + b) * image_size, g);
  }
  return col;
}

// y (images, K, P, Q) <- out (K, images * width): the chunk's GEMM result, junk columns dropped.
void scatter_output(const kernels::ConvKernels& ck, float* y, const float* out, int64_t n0,
                    int64_t count, const ConvGeometry& g, const Layout& l) {
  const int64_t cols = count * l.width, row = l.wide ? l.padded.w : g.q;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t k = 0; k < g.k; ++k) {
      const float* src = out + k * cols + i * l.width;
      float* dst = y + ((n0 + i) * g.k + k) * g.pq();
      if (!l.wide) {
        std::copy_n(src, g.pq(), dst);
        continue;
      }
      ck.copy_rows(dst, g.q, src, row, g.p, g.q, g.q);
    }
}

// dy (K, images * width) <- gy (images, K, P, Q), junk columns 0 (so that they add nothing to
// the weight gradient or the image gradient).
void gather_grad_output(const kernels::ConvKernels& ck, float* dy, const float* gy, int64_t n0,
                        int64_t count, const ConvGeometry& g, const Layout& l) {
  const int64_t cols = count * l.width;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t k = 0; k < g.k; ++k) {
      const float* src = gy + ((n0 + i) * g.k + k) * g.pq();
      float* dst = dy + k * cols + i * l.width;
      if (!l.wide) {
        std::copy_n(src, g.pq(), dst);
        continue;
      }
      ck.copy_rows(dst, l.padded.w, src, g.q, g.p, g.q, l.padded.w);
    }
}

ConvGeometry padded_geometry(const ConvGeometry& g) {
  ConvGeometry p = g;
  p.h = g.h + 2 * g.pad_h, p.w = g.w + 2 * g.pad_w;
  p.pad_h = p.pad_w = 0;
  return p;
}

int64_t vector_width() { return runtime::kernel_table().isa == Isa::avx512 ? 16 : 8; }

// ConvKernels::forward_direct instead of im2col + GEMM for the stride-1 convolutions it lays
// vectors over (kernels::direct_mode): reading the images in place, it skips writing, packing
// and reading a col matrix R * S times their size. Measured 1.3-2x faster than the GEMM path for
// few input channels, still ahead for 64 (forward of (64,32,32,32) -> 64 3x3 filters: 13.4 ->
// 10.2 ms).
bool use_direct(const ConvGeometry& g) {
  return !g.is_pointwise() &&
         kernels::direct_mode(padded_geometry(g), vector_width()) != kernels::DirectMode::none;
}

// f(chunk, first, last) over work items: the chunks, or when there are fewer chunks than
// threads, (chunk, share [first, last) of `parts`) pairs, so that every thread has work. The
// kernels sum each output in one order whichever item computes it.
template <class F>
void for_chunk_parts(int64_t chunks, int64_t parts, int threads, F f) {
  const int64_t groups =
      chunks >= threads ? 1 : std::min<int64_t>(parts, (threads + chunks - 1) / chunks);
  runtime::parallel_for(chunks * groups, threads, [&](int64_t item) {
    const int64_t ch = item / groups, grp = item % groups;
    f(ch, parts * grp / groups, parts * (grp + 1) / groups);
  });
}

// y = the stride-1 convolution of x (g, padding included) by forward_direct, over chunks of
// images padded together (within 16K floats, so they stay in L1/L2 while every filter passes
// over them), shared by filters when there are fewer chunks than threads.
void direct_conv(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g,
                 bool relu, int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  const ConvGeometry padded = padded_geometry(g);
  const int64_t plane = padded.h * padded.w, image = g.c * plane;
  const int64_t most = std::max<int64_t>(16 * 1024 / image, 1);  // images per chunk
  const int64_t chunks = (g.n + most - 1) / most, images = (g.n + chunks - 1) / chunks;
  for_chunk_parts(chunks, g.k, threads, [&](int64_t ch, int64_t k0, int64_t k1) {
    const int64_t n0 = ch * images, count = std::min(images, g.n - n0);
    // The images padded, and followed by the slack the kernel may read past them; read in
    // place when unpadded and followed by at least that much of x.
    const float* in = x + n0 * image;
    if (has_padding(g) || (g.n - n0 - count) * image < kernels::kDirectSlack) {
      const int64_t size = count * image + kernels::kDirectSlack;
      float* padded_x = runtime::workspace_of<float>(Slot::pad, size_t(size));
      std::fill(padded_x, padded_x + size, 0.0f);
      for (int64_t i = 0; i < count * g.c; ++i)
        ck.copy_rows(padded_x + i * plane + g.pad_h * padded.w + g.pad_w, padded.w,
                     x + (n0 * g.c + i) * g.h * g.w, g.w, g.h, g.w, g.w);
      in = padded_x;
    }
    ConvGeometry filters = padded;
    filters.k = k1 - k0;
    ck.forward_direct(y + (n0 * g.k + k0) * g.pq(), g.k * g.pq(), in, count, w + k0 * g.crs(),
                      b ? b + k0 : nullptr, filters, relu);
  });
}

// The input gradient of a stride-1 convolution is itself one: dy, padded by dil * (R - 1) - pad,
// correlated with the filters flipped and transposed (K input channels, C filters). When that
// convolution qualifies for the direct kernel (use_direct), it replaces the GEMM and col2im,
// unless its taps reading padding would add over an eighth to the GEMM's multiply-adds (H * W
// outputs against P * Q columns: LeNet's second layer, 14 x 14 against 10 x 10, would double).
bool transposed_geometry(const ConvGeometry& g, ConvGeometry* t) {
  const int64_t pad_h = g.dil_h * (g.r - 1) - g.pad_h, pad_w = g.dil_w * (g.s - 1) - g.pad_w;
  if (g.stride_h != 1 || g.stride_w != 1 || pad_h < 0 || pad_w < 0) return false;
  if (8 * (g.h * g.w - g.pq()) > g.pq()) return false;
  *t = ConvGeometry{g.n, g.k, g.p, g.q, g.c, g.r, g.s, 1, 1, pad_h, pad_w, g.dil_h, g.dil_w,
                    g.h, g.w};
  return use_direct(*t);
}

void input_grad_direct(float* gx, const float* gy, const float* w, const ConvGeometry& g,
                       const ConvGeometry& t, int threads) {
  // wt[c][k][r][s] = w[k][c][R-1-r][S-1-s]
  const int64_t rs = g.r * g.s;
  float* wt = runtime::workspace_of<float>(Slot::weights, size_t(g.k * g.crs()));
  for (int64_t k = 0; k < g.k; ++k)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t i = 0; i < rs; ++i)
        wt[(c * g.k + k) * rs + i] = w[(k * g.c + c) * rs + rs - 1 - i];
  direct_conv(gx, gy, wt, nullptr, t, false, threads);
}

// ConvKernels::input_grad_lanes for the stride-1 convolutions the transposed one does not take
// (its taps reading padding would cost too much: LeNet's second layer, 14 x 14 input gradients
// from 10 x 10 outputs), on batches that fill their vectors of images. Measured faster than the
// GEMM + col2im at every size tried (1 thread): LeNet's second layer 0.32 -> 0.16 ms,
// (64,32,8,8) -> 32 3x3 filters 0.45 -> 0.24, (64,3,32,32) -> 8 5x5 0.78 -> 0.55, (64,32,32,32)
// -> 64 3x3 unpadded 12.9 -> 11.0; even with a block of images 25 MB large, level. The bound on
// a block (its output and input gradients in lanes) only caps each thread's scratch at 8 MiB.
constexpr int64_t kLanesFloats = 2 * 1024 * 1024;

bool use_input_grad_lanes(const ConvGeometry& g) {
  const int64_t width = vector_width();
  return g.stride_h == 1 && g.stride_w == 1 && kernels::fills_vectors(g.n, width) &&
         (g.k * g.pq() + g.c * g.h * g.w) * width <= kLanesFloats;
}

// Blocks of a vector's worth of images, turned over into lanes (the last block's idle lanes
// read 0), and their input gradients turned back; shared by channels when there are fewer
// blocks than threads.
void input_grad_lanes_f32(float* gx, const float* gy, const float* w, const ConvGeometry& g,
                          int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  const int64_t width = vector_width(), rs = g.r * g.s, kpq = g.k * g.pq();
  const int64_t plane = g.h * g.w, image = g.c * plane;
  // w_t[(rs_index * K + k) * C + c] = w[k][c][rs_index]
  float* w_t = runtime::workspace_of<float>(Slot::weights, size_t(g.k * g.crs()));
  for (int64_t k = 0; k < g.k; ++k)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t i = 0; i < rs; ++i) w_t[(i * g.k + k) * g.c + c] = w[(k * g.c + c) * rs + i];
  const int64_t blocks = (g.n + width - 1) / width;
  for_chunk_parts(blocks, g.c, threads, [&](int64_t block, int64_t c0, int64_t c1) {
    const int64_t n0 = block * width, count = std::min(width, g.n - n0);
    float* dy_t = runtime::workspace_of<float>(Slot::chunk, size_t(kpq * width));
    float* gx_t = runtime::workspace_of<float>(Slot::col, size_t(image * width));
    if (count < width) std::fill(dy_t, dy_t + kpq * width, 0.0f);
    ck.transpose(dy_t, width, gy + n0 * kpq, kpq, count, kpq);
    ck.input_grad_lanes(gx_t, dy_t, w_t, g, c0, c1);
    ck.transpose(gx + n0 * image + c0 * plane, image, gx_t + c0 * plane * width, width,
                 (c1 - c0) * plane, count);
  });
}

void forward_f32(float* y, const float* x, const float* w, const float* b, const ConvGeometry& g,
                 bool relu, int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  if (use_direct(g)) return direct_conv(y, x, w, b, g, relu, threads);
  const int64_t crs = g.crs();
  const Layout l = layout(g);
  const Split sp = split(l.chunks, threads);
  runtime::parallel_for(l.chunks, sp.outer, [&](int64_t ch) {
    const int64_t n0 = ch * l.images, count = std::min(l.images, g.n - n0);
    const int64_t cols = count * l.width;
    const float* col = im2col_chunk(ck, x, n0, count, g, l);
    // out (K x cols) = w (K x CRS) @ col (CRS x cols) + b per row (+ relu), in one GEMM; a single
    // compact image's out is its slice of y already.
    const bool direct = count == 1 && !l.wide;
    float* out = direct ? y + n0 * g.k * g.pq()
                        : runtime::workspace_of<float>(Slot::chunk, size_t(g.k * cols));
    const SgemmProblem p{Trans::N, Trans::N, g.k, cols, crs, 1.0f, w, crs, col, cols, 0.0f, out,
                         cols, b, b ? BiasMode::row : BiasMode::none, relu};
    runtime::sgemm_checked(p, sp.inner);
    if (!direct) scatter_output(ck, y, out, n0, count, g, l);
  });
}

// dcol = w^T (CRS x K) @ dy (K x cols), folded back onto the chunk's images by col2im. dcol is
// made a few input channels at a time (col2im treats channels independently), in blocks small
// enough to stay in L2 between the GEMM that writes them and col2im that reads them: with few
// output channels the GEMM has little arithmetic per value written, and a dcol spilled to memory
// made it run at a tenth of its speed.
void input_grad_chunk(const kernels::ConvKernels& ck, float* gx, const float* w, const float* dy,
                      int64_t n0, int64_t count, const ConvGeometry& g, const Layout& l,
                      int threads) {
  const int64_t crs = g.crs(), rs = g.r * g.s, image_size = g.c * g.h * g.w;
  const int64_t cols = count * l.width;
  if (count == 1 && g.is_pointwise()) {  // dcol is the image gradient itself
    const SgemmProblem p{Trans::T, Trans::N, crs, cols, g.k, 1.0f, w, crs, dy, cols, 0.0f,
                         gx + n0 * image_size, cols, nullptr, BiasMode::none, false};
    return runtime::sgemm_checked(p, threads);
  }
  constexpr int64_t kBlockFloats = 64 * 1024;  // 256 KiB of dcol per block
  const int64_t channels = std::clamp<int64_t>(kBlockFloats / (rs * cols), 1, g.c);
  float* dcol = runtime::workspace_of<float>(Slot::col_grad, size_t(channels * rs * cols));
  const ConvGeometry& pg = l.padded;
  // Wide and padded: each image's gradient is summed in a padded plane set, then cropped.
  const bool crop = l.wide && has_padding(g);
  float* padded = crop ? runtime::workspace_of<float>(Slot::pad, size_t(channels * pg.h * pg.w))
                       : nullptr;
  for (int64_t c0 = 0; c0 < g.c; c0 += channels) {
    ConvGeometry block = l.padded;
    block.c = std::min(channels, g.c - c0);
    const SgemmProblem p{Trans::T, Trans::N, block.c * rs, cols, g.k, 1.0f, w + c0 * rs, crs,
                         dy, cols, 0.0f, dcol, cols, nullptr, BiasMode::none, false};
    runtime::sgemm_checked(p, threads);
    for (int64_t i = 0; i < count; ++i) {
      float* image = gx + (n0 + i) * image_size + c0 * g.h * g.w;
      if (!l.wide) {
        ck.col2im(image, dcol + i * l.width, cols, block);
      } else if (!crop) {
        ck.col2im_wide(image, dcol + i * l.width, cols, block);
      } else {
        ck.col2im_wide(padded, dcol + i * l.width, cols, block);
        for (int64_t c = 0; c < block.c; ++c)
          ck.copy_rows(image + c * g.h * g.w, g.w, padded + (c * pg.h + g.pad_h) * pg.w + g.pad_w,
                       pg.w, g.h, g.w, g.w);
      }
    }
  }
}

// ConvKernels::weight_grad_direct for layers whose filters fill their vectors (at most an
// eighth of the lanes idle: 16, 32, 64 filters, not LeNet's first layer's 6) and whose filters
// it has tiles for: no col matrix, no reduction across lanes. Measured against the in-place dot
// products (16 filters) and the GEMM (64): LeNet's conv2 0.26 -> 0.15 ms, (64,32,32,32) -> 64
// 3x3 filters 15.8 -> 11.1 ms.
bool use_weight_grad_direct(const ConvGeometry& g) {
  return kernels::weight_grad_direct_supports(g) && !g.is_pointwise() &&
         kernels::fills_vectors(g.k, vector_width());
}

// Images in fixed groups (kWeightGradGroups, whatever the thread count), each summing its
// images into a partial gradient in the kernel's transposed layout (C*R*S x filters), a few
// images per call; the partials are added in group order, then turned over into gw.
void weight_grad_direct_f32(float* gw, const float* gy, const float* x, const ConvGeometry& g,
                            int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  const int64_t width = vector_width();
  const int64_t ld = (g.k + width - 1) / width * width, crs = g.crs(), pq = g.pq();
  const int64_t groups = std::min(g.n, kWeightGradGroups);
  // Images per call: their transposed output gradients within 64K floats (L2).
  const int64_t images = std::clamp<int64_t>(64 * 1024 / (pq * ld), 1, g.n);
  const ConvGeometry padded = padded_geometry(g);
  float* partial = runtime::workspace_of<float>(Slot::shared, size_t(groups * crs * ld));
  runtime::parallel_for(groups, std::min<int64_t>(threads, groups), [&](int64_t grp) {
    const int64_t first = g.n * grp / groups, last = g.n * (grp + 1) / groups;
    float* part = partial + grp * crs * ld;
    float* dy_t = runtime::workspace_of<float>(Slot::chunk, size_t(images * pq * ld));
    // Columns K .. ld stay 0: the transposes write only the first K of each row.
    if (ld != g.k) std::fill(dy_t, dy_t + images * pq * ld, 0.0f);
    for (int64_t n0 = first; n0 < last; n0 += images) {
      const int64_t count = std::min(images, last - n0);
      for (int64_t i = 0; i < count; ++i)
        ck.transpose(dy_t + i * pq * ld, ld, gy + (n0 + i) * g.k * pq, pq, g.k, pq);
      ck.weight_grad_direct(part, ld, dy_t, ld, pq * ld,
                            padded_images(ck, x, n0, count, g, padded, Slot::col), count, padded,
                            n0 != first);
    }
  });
  for (int64_t grp = 1; grp < groups; ++grp)
    ck.accumulate(partial, partial + grp * crs * ld, crs * ld);
  ck.transpose(gw, crs, partial, ld, crs, g.k);
}

void backward_f32(float* gx, float* gw, float* gb, const float* gy, const float* x, const float* w,
                  const ConvGeometry& g, int threads) {
  const kernels::ConvKernels& ck = *runtime::kernel_table().conv;
  // The direct kernels first; what they do not take runs as GEMMs over chunks of images.
  ConvGeometry transposed;
  if (gx && transposed_geometry(g, &transposed)) {
    input_grad_direct(gx, gy, w, g, transposed, threads);
    gx = nullptr;  // done
  }
  if (gx && use_input_grad_lanes(g)) {
    input_grad_lanes_f32(gx, gy, w, g, threads);
    gx = nullptr;
  }
  if (gw && use_weight_grad_direct(g)) {
    weight_grad_direct_f32(gw, gy, x, g, threads);
    gw = nullptr;  // done
  }
  const int64_t crs = g.crs();
  const Layout l = layout(g);
  const int64_t groups = std::min(l.chunks, kWeightGradGroups);
  // Partial weight gradients, one per group of consecutive chunks, shared by the team.
  float* partial = gw ? runtime::workspace_of<float>(Slot::shared, size_t(groups * g.k * crs)) : nullptr;
  const Split sp = split(groups, threads);
  if (gw || gx) runtime::parallel_for(groups, sp.outer, [&](int64_t grp) {
    const int64_t first = l.chunks * grp / groups, last = l.chunks * (grp + 1) / groups;
    for (int64_t ch = first; ch < last; ++ch) {
      const int64_t n0 = ch * l.images, count = std::min(l.images, g.n - n0);
      const int64_t cols = count * l.width;
      // dy of the chunk as one (K x cols) matrix: (images, K, PQ) -> (K, images, width).
      const float* dy = gy + n0 * g.k * g.pq();
      if (count > 1 || l.wide) {
        float* buf = runtime::workspace_of<float>(Slot::chunk, size_t(g.k * cols));
        gather_grad_output(ck, buf, gy, n0, count, g, l);
        dy = buf;
      }
      if (gw) {
        // partial (K x CRS) (+)= dy (K x cols) @ col^T (cols x CRS)
        float* part = partial + grp * g.k * crs;
        if (g.k <= kFewFilters && l.wide) {  // col read in place from the padded images
          ck.weight_grad_wide(part, dy, cols,
                              padded_images(ck, x, n0, count, g, l.padded, Slot::col), count,
                              l.padded, ch != first);
        } else {
          const float* col = im2col_chunk(ck, x, n0, count, g, l);
          if (g.k <= kFewFilters) {
            ck.row_dots(part, crs, dy, cols, g.k, col, cols, crs, cols, ch != first);
          } else {
            const SgemmProblem p{Trans::N, Trans::T, g.k, crs, cols, 1.0f, dy, cols, col, cols,
                                 ch == first ? 0.0f : 1.0f, part, crs, nullptr, BiasMode::none,
                                 false};
            runtime::sgemm_checked(p, sp.inner);
          }
        }
      }
      if (gx) input_grad_chunk(ck, gx, w, dy, n0, count, g, l, sp.inner);
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
    ck.row_sums(sums, gy, g.n * g.k, g.pq());
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
