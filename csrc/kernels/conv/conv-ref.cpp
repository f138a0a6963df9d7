// Scalar reference convolution (direct, no im2col), float and double.
#include <algorithm>

#include "conv/conv.h"

namespace nnx::kernels::ref {

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvGeometry& g, bool relu,
                    int threads) {
  (void)threads;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t k = 0; k < g.k; ++k) {
      for (int64_t p = 0; p < g.p; ++p) {
        for (int64_t q = 0; q < g.q; ++q) {
          T acc = 0;
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t r = 0; r < g.r; ++r) {
              const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
              if (ih < 0 || ih >= g.h) continue;
              for (int64_t s = 0; s < g.s; ++s) {
                const int64_t iw = q * g.stride_w + s * g.dil_w - g.pad_w;
                if (iw < 0 || iw >= g.w) continue;
                acc += w[((k * g.c + c) * g.r + r) * g.s + s] * x[((n * g.c + c) * g.h + ih) * g.w + iw];
              }
            }
          if (b) acc += b[k];
          if (relu) acc = std::max(acc, T(0));
          y[((n * g.k + k) * g.p + p) * g.q + q] = acc;
        }
      }
    }
  }
}

template <typename T>
void conv2d_backward(T* grad_x, T* grad_w, T* grad_b, const T* grad_y, const T* x, const T* w,
                     const ConvGeometry& g, int threads) {
  (void)threads;
  auto gy = [&](int64_t n, int64_t k, int64_t p, int64_t q) {
    return grad_y[((n * g.k + k) * g.p + p) * g.q + q];
  };
  if (grad_b) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t k = 0; k < g.k; ++k) {
      T acc = 0;
      for (int64_t n = 0; n < g.n; ++n)
        for (int64_t p = 0; p < g.p; ++p)
          for (int64_t q = 0; q < g.q; ++q) acc += gy(n, k, p, q);
      grad_b[k] = acc;
    }
  }
  if (grad_w) {
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int64_t k = 0; k < g.k; ++k)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t r = 0; r < g.r; ++r)
          for (int64_t s = 0; s < g.s; ++s) {
            T acc = 0;
            for (int64_t n = 0; n < g.n; ++n)
              for (int64_t p = 0; p < g.p; ++p) {
                const int64_t ih = p * g.stride_h + r * g.dil_h - g.pad_h;
                if (ih < 0 || ih >= g.h) continue;
                for (int64_t q = 0; q < g.q; ++q) {
                  const int64_t iw = q * g.stride_w + s * g.dil_w - g.pad_w;
                  if (iw < 0 || iw >= g.w) continue;
                  acc += gy(n, k, p, q) * x[((n * g.c + c) * g.h + ih) * g.w + iw];
                }
              }
            grad_w[((k * g.c + c) * g.r + r) * g.s + s] = acc;
          }
  }
  if (grad_x) {
    // Gather form: each input pixel sums over the (k, r, s, p, q) that read it.
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t ih = 0; ih < g.h; ++ih)
          for (int64_t iw = 0; iw < g.w; ++iw) {
            T acc = 0;
            for (int64_t k = 0; k < g.k; ++k)
              for (int64_t r = 0; r < g.r; ++r) {
                const int64_t ph = ih + g.pad_h - r * g.dil_h;
                if (ph < 0 || ph % g.stride_h != 0 || ph / g.stride_h >= g.p) continue;
                for (int64_t s = 0; s < g.s; ++s) {
                  const int64_t pw = iw + g.pad_w - s * g.dil_w;
                  if (pw < 0 || pw % g.stride_w != 0 || pw / g.stride_w >= g.q) continue;
                  acc += w[((k * g.c + c) * g.r + r) * g.s + s] * gy(n, k, ph / g.stride_h, pw / g.stride_w);
                }
              }
            grad_x[((n * g.c + c) * g.h + ih) * g.w + iw] = acc;
          }
  }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*,
                                    const ConvGeometry&, bool, int);
template void conv2d_forward<double>(double*, const double*, const double*, const double*,
                                     const ConvGeometry&, bool, int);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const ConvGeometry&, int);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const ConvGeometry&, int);

}  // namespace nnx::kernels::ref
