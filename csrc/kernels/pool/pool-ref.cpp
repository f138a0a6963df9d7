// Scalar pooling kernels, float and double: the reference, and the float path of everything that
// has no SIMD version (backward scatters, average and adaptive pooling).
#include <algorithm>
#include <cmath>
#include <limits>

#include "pool/pool.h"

namespace nnx::kernels::ref {

// Below this many inputs a parallel region costs more than it saves (and, on a loaded machine, a
// thread that is not scheduled stalls the whole region).
constexpr int64_t kParallelMin = 65536;
inline bool parallel_worth_it(const PoolGeometry& g) {
  return g.planes > 1 && g.planes * g.h * g.w > kParallelMin;
}
namespace {

// Clipped window of output (i, j): rows [h0, h1), columns [w0, w1) of the input.
struct Window {
  int64_t h0, h1, w0, w1;
};
Window window(const PoolGeometry& g, int64_t i, int64_t j) {
  const int64_t h0 = i * g.sh - g.ph, w0 = j * g.sw - g.pw;
  return {std::max<int64_t>(h0, 0), std::min(h0 + g.kh, g.h), std::max<int64_t>(w0, 0),
          std::min(w0 + g.kw, g.w)};
}
Window adaptive_window(const PoolGeometry& g, int64_t i, int64_t j) {
  return {i * g.h / g.p, ((i + 1) * g.h + g.p - 1) / g.p, j * g.w / g.q, ((j + 1) * g.w + g.q - 1) / g.q};
}
// In floating point: kh * kw of a huge window overflows int64.
double divisor(const PoolGeometry& g, const Window& win, bool count_include_pad) {
  return count_include_pad ? double(g.kh) * double(g.kw)
                           : double(win.h1 - win.h0) * double(win.w1 - win.w0);
}

}  // namespace

template <typename T>
void max_pool_forward(T* y, int64_t* indices, const T* x, const PoolGeometry& g, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel_worth_it(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * g.h * g.w;
    for (int64_t i = 0; i < g.p; ++i)
      for (int64_t j = 0; j < g.q; ++j) {
        const Window win = window(g, i, j);
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = win.h0 * g.w + win.w0;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) {
            const T v = xp[h * g.w + w];
            if (v > best || (std::isnan(v) && !std::isnan(best))) best = v, arg = h * g.w + w;
          }
        y[(pl * g.p + i) * g.q + j] = best;
        indices[(pl * g.p + i) * g.q + j] = arg;
      }
  }
}

template <typename T>
void max_pool_backward(T* grad_x, const T* grad_y, const int64_t* indices, const PoolGeometry& g,
                       int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel_worth_it(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    T* gx = grad_x + pl * g.h * g.w;
    std::fill(gx, gx + g.h * g.w, T(0));
    for (int64_t o = pl * g.p * g.q; o < (pl + 1) * g.p * g.q; ++o) gx[indices[o]] += grad_y[o];
  }
}

namespace {

// Average over each output's window: `window_of(i, j)` gives the clipped window, `divisor_of`
// the number it is divided by. Average and adaptive pooling differ only in those two.
template <typename T, class WindowOf, class DivisorOf>
void window_average(T* y, const T* x, const PoolGeometry& g, WindowOf window_of,
                    DivisorOf divisor_of, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel_worth_it(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * g.h * g.w;
    for (int64_t i = 0; i < g.p; ++i)
      for (int64_t j = 0; j < g.q; ++j) {
        const Window win = window_of(i, j);
        T sum = 0;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) sum += xp[h * g.w + w];
        y[(pl * g.p + i) * g.q + j] = sum / T(divisor_of(win));
      }
  }
}

// The adjoint: each output's gradient, divided like its value, spread over its window.
template <typename T, class WindowOf, class DivisorOf>
void window_average_backward(T* grad_x, const T* grad_y, const PoolGeometry& g, WindowOf window_of,
                             DivisorOf divisor_of, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel_worth_it(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    T* gx = grad_x + pl * g.h * g.w;
    std::fill(gx, gx + g.h * g.w, T(0));
    for (int64_t i = 0; i < g.p; ++i)
      for (int64_t j = 0; j < g.q; ++j) {
        const Window win = window_of(i, j);
        const T share = grad_y[(pl * g.p + i) * g.q + j] / T(divisor_of(win));
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) gx[h * g.w + w] += share;
      }
  }
}

double area(const Window& win) { return double(win.h1 - win.h0) * double(win.w1 - win.w0); }

}  // namespace

template <typename T>
void avg_pool_forward(T* y, const T* x, const PoolGeometry& g, bool count_include_pad, int threads) {
  window_average(y, x, g, [&](int64_t i, int64_t j) { return window(g, i, j); },
                 [&](const Window& win) { return divisor(g, win, count_include_pad); }, threads);
}

template <typename T>
void avg_pool_backward(T* grad_x, const T* grad_y, const PoolGeometry& g, bool count_include_pad,
                       int threads) {
  window_average_backward(grad_x, grad_y, g, [&](int64_t i, int64_t j) { return window(g, i, j); },
                          [&](const Window& win) { return divisor(g, win, count_include_pad); },
                          threads);
}

template <typename T>
void adaptive_avg_pool_forward(T* y, const T* x, const PoolGeometry& g, int threads) {
  window_average(y, x, g, [&](int64_t i, int64_t j) { return adaptive_window(g, i, j); }, area,
                 threads);
}

template <typename T>
void adaptive_avg_pool_backward(T* grad_x, const T* grad_y, const PoolGeometry& g, int threads) {
  window_average_backward(grad_x, grad_y, g,
                          [&](int64_t i, int64_t j) { return adaptive_window(g, i, j); }, area,
                          threads);
}

#define NNX_INSTANTIATE(T)                                                                        \
  template void max_pool_forward<T>(T*, int64_t*, const T*, const PoolGeometry&, int);            \
  template void max_pool_backward<T>(T*, const T*, const int64_t*, const PoolGeometry&, int);     \
  template void avg_pool_forward<T>(T*, const T*, const PoolGeometry&, bool, int);                \
  template void avg_pool_backward<T>(T*, const T*, const PoolGeometry&, bool, int);               \
  template void adaptive_avg_pool_forward<T>(T*, const T*, const PoolGeometry&, int);             \
  template void adaptive_avg_pool_backward<T>(T*, const T*, const PoolGeometry&, int);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx::kernels::ref
