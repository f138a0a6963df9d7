// Convolution: the kernel-layer interface. The convolution itself is a GEMM over an im2col
// matrix (the runtime layer drives it); the kernels here move data between the image and that
// matrix, plus the scalar reference convolution.
#pragma once

#include <cstdint>

namespace nnx::kernels {

// x: (N, C, H, W), w: (K, C, R, S), y: (N, K, P, Q), all contiguous.
struct ConvGeometry {
  int64_t n, c, h, w;     // input
  int64_t k, r, s;        // filters
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int64_t p, q;           // output height and width
  int64_t crs() const { return c * r * s; }
  int64_t pq() const { return p * q; }
  // A 1x1 convolution with unit stride and no padding reads the image itself as its col matrix.
  bool is_pointwise() const {
    return r == 1 && s == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

struct ConvKernels {
  // col (C*R*S rows of P*Q values, rows ld apart) <- one image (C, H, W); taps that fall into
  // the padding read 0. ld > P*Q lays several images side by side in one col matrix.
  void (*im2col)(float* col, int64_t ld, const float* image, const ConvGeometry& g);
  // image (C, H, W) <- sum of col over the taps that read each pixel (the adjoint of im2col),
  // overwriting image. Summation order is fixed, so results never depend on threads.
  void (*col2im)(float* image, const float* col, int64_t ld, const ConvGeometry& g);
  // The same pair for stride-1 convolutions in the wide layout: g describes an image already
  // padded (g.h, g.w the padded sizes, no padding left), and each image gives P * W columns, its
  // output rows computed at the full width W of which the last W - Q are junk. Every col row is
  // then one contiguous run of the image (copied whole, not in rows of Q), junk columns past the
  // run read 0. col2im_wide sums the runs back (junk columns must hold 0 by then).
  void (*im2col_wide)(float* col, int64_t ld, const float* image, const ConvGeometry& g);
  void (*col2im_wide)(float* image, const float* col, int64_t ld, const ConvGeometry& g);
  // out[i] = sum of row i of x (rows x cols), in a fixed order.
  void (*row_sums)(float* out, const float* x, int64_t rows, int64_t cols);
  // y += x over n floats.
  void (*accumulate)(float* y, const float* x, int64_t n);
  // `rows` runs of `cols` floats from src (rows ld_src apart) into dst (rows ld_dst apart), each
  // dst row then zeroed from cols to width (>= cols): a plane moved between layouts with and
  // without padding or junk columns in one call (a memmove per row of a few dozen floats cost
  // more than the copying).
  void (*copy_rows)(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                    int64_t cols, int64_t width);
  // c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0) + sum_p a[i * lda + p] * b[j * ldb + p]
  // for i < m, j < n, p < len: a GEMM whose operands both run along the reduction, read in place.
  // For small outputs (the weight gradient of a layer with few filters) over long rows, where a
  // packed GEMM would spend more time packing than multiplying. Sums are lane-wise partial sums
  // then a fixed-order reduction.
  void (*row_dots)(float* c, int64_t ldc, const float* a, int64_t lda, int64_t m, const float* b,
                   int64_t ldb, int64_t n, int64_t len, bool accumulate);
  // gw (K x C*R*S) (+)= the weight gradient of `count` images of a stride-1 convolution in the
  // wide layout, without a col matrix: images are the padded inputs (count x C x H x W, g the
  // padded geometry, as for im2col_wide), dy the output gradient (K rows ld_dy apart, image t
  // from column t * P * W, junk columns 0). Each tap's row of col is read in place from its
  // image plane, so a row_dots over the col matrix without im2col.
  void (*weight_grad_wide)(float* gw, const float* dy, int64_t ld_dy, const float* images,
                           int64_t count, const ConvGeometry& g, bool accumulate);
  // y <- bias + the stride-1 convolution of `count` padded images (g as for im2col_wide, g.k the
  // filters to compute; image t's output planes from y + t * y_step), then max(0, .) if relu:
  // computed directly, output vectors read in place from the images (see direct_mode), with
  // neither a col matrix nor packing. Vectors read up to kDirectSlack - 1 floats past their
  // image (extra lanes are never stored): the caller leaves that many readable floats after the
  // last image.
  void (*forward_direct)(float* y, int64_t y_step, const float* images, int64_t count,
                         const float* w, const float* bias, const ConvGeometry& g, bool relu);
  // gw_t (C*R*S rows of ld_gw floats, filter k in column k) (+)= the weight gradient of `count`
  // images, as sums of outer products over output positions: per position, each tap's input
  // value (broadcast) times the vector of every filter's output gradient there. Nothing is
  // reduced across lanes and no col matrix is made: the images are read in place. images: padded
  // (count x C x H x W, g the padded geometry, any stride, see weight_grad_direct_supports);
  // dy_t: per image P*Q rows of ld_dy floats (position-major: row p*Q+q holds every filter's
  // output gradient, 0 from K to ld_dy, a multiple of the vector width), images dy_step floats
  // apart.
  void (*weight_grad_direct)(float* gw_t, int64_t ld_gw, const float* dy_t, int64_t ld_dy,
                             int64_t dy_step, const float* images, int64_t count,
                             const ConvGeometry& g, bool accumulate);
  // dst (cols x rows, rows ld_dst apart) <- src (rows x cols, rows ld_src apart).
  void (*transpose)(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                    int64_t cols);
  // Channels [c0, c1) of the input gradient of a stride-1 convolution (g: one image's
  // geometry, padding included, any dilation) for as many images as a vector has lanes, image i
  // in lane i: gx_t holds C*H*W vectors (one per input value, in CHW order), dy_t K*P*Q (one
  // per output value). w_t: the filters tap-major, w_t[((r * S + s) * K + k) * C + c] =
  // w[k][c][r][s]. Every lane does useful work however small the images, and each input value
  // sums only the taps that reach inside dy, in (r, s, k) order (a GEMM + col2im pays for every
  // tap of every output; the transposed convolution for the taps reading its padding).
  void (*input_grad_lanes)(float* gx_t, const float* dy_t, const float* w_t,
                           const ConvGeometry& g, int64_t c0, int64_t c1);
};

// The filter widths weight_grad_direct has register tiles for (3 and 5), undilated along rows.
inline bool weight_grad_direct_supports(const ConvGeometry& g) {
  return (g.s == 3 || g.s == 5) && g.dil_w == 1;
}

// How forward_direct lays vectors over a padded image's outputs (g as for im2col_wide) with
// vectors of `width` floats: by rows when the rows fill their vectors (at most an eighth of the
// lanes idle: LeNet's first layer, 28 of 32); else compact, the outputs in order, when each
// vector's inputs lie within two vectors (rows whose padding is narrow: LeNet's second layer,
// 10 of 14 columns); else none (the GEMM path).
enum class DirectMode { none, rows, compact };

// Whether n values in vectors of `width` floats leave at most an eighth of the lanes idle.
inline bool fills_vectors(int64_t n, int64_t width) {
  const int64_t lanes = (n + width - 1) / width * width;
  return 8 * (lanes - n) <= lanes;
}

inline DirectMode direct_mode(const ConvGeometry& g, int64_t width) {
  if (g.stride_h != 1 || g.stride_w != 1) return DirectMode::none;
  if (fills_vectors(g.q, width)) return DirectMode::rows;
  // A vector's first and last outputs are width - 1 apart, plus the junk columns of each row
  // boundary it crosses (at most ceil((width - 1) / Q) of them).
  const int64_t crossings = (width - 1 + g.q - 1) / g.q;
  return width - 1 + crossings * (g.w - g.q) < 2 * width ? DirectMode::compact : DirectMode::none;
}

// See forward_direct: two of the widest vectors of any ISA.
constexpr int64_t kDirectSlack = 32;

namespace avx2 { const ConvKernels& conv_kernels(); }
namespace avx512 { const ConvKernels& conv_kernels(); }

namespace ref {
// Direct convolution: one multiply-add per (output, tap), accumulated in T.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvGeometry& g, bool relu,
                    int threads);
// Any of grad_x, grad_w, grad_b may be null (not wanted).
template <typename T>
void conv2d_backward(T* grad_x, T* grad_w, T* grad_b, const T* grad_y, const T* x, const T* w,
                     const ConvGeometry& g, int threads);
}  // namespace ref

}  // namespace nnx::kernels
