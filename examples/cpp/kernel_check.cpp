// Calls nnx's GEMM and convolution kernels directly, on raw arrays, and checks each result
// against a naive loop accumulated in double. Prints one line per case and exits with 1 if any
// case is off by more than float32 rounding allows.
//
//   kernel_check            (NNX_ISA=ref|avx2|avx512 and OMP_NUM_THREADS apply as in Python)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "nnx/conv.h"
#include "nnx/gemm.h"
#include "nnx/runtime.h"

namespace {

std::vector<float> random_values(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = uniform(rng);
  return v;
}

// |got - want| relative to the size of the terms summed (`scale`), which bounds the rounding.
bool report(const char* what, const std::vector<float>& got, const std::vector<double>& want,
            double scale) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  const bool ok = worst <= 1e-5 * scale;
  std::printf("%-48s max error %.2e  %s\n", what, worst, ok ? "ok" : "FAILED");
  return ok;
}

// C = relu(op(A) op(B) + bias) with a bias per column, through nnx::sgemm's fused epilogue.
bool check_gemm(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, std::mt19937& rng) {
  const std::vector<float> a = random_values(size_t(m * k), rng), b = random_values(size_t(k * n), rng),
                           bias = random_values(size_t(n), rng);
  std::vector<float> c(size_t(m * n));
  nnx::GemmEpilogue epilogue;
  epilogue.bias = bias.data();
  epilogue.bias_mode = nnx::BiasMode::col;
  epilogue.relu = true;
  nnx::sgemm(trans_a ? nnx::Trans::T : nnx::Trans::N, trans_b ? nnx::Trans::T : nnx::Trans::N, m,
             n, k, 1.0f, a.data(), trans_a ? m : k, b.data(), trans_b ? k : n, 0.0f, c.data(), n,
             epilogue);
  std::vector<double> want(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = bias[size_t(j)];
      for (int64_t p = 0; p < k; ++p)
        sum += double(trans_a ? a[size_t(p * m + i)] : a[size_t(i * k + p)]) *
               double(trans_b ? b[size_t(j * k + p)] : b[size_t(p * n + j)]);
      want[size_t(i * n + j)] = std::max(sum, 0.0);
    }
  char what[64];
  std::snprintf(what, sizeof what, "sgemm %c%c m=%lld n=%lld k=%lld + bias + relu",
                trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', (long long)m, (long long)n, (long long)k);
  return report(what, c, want, double(k));
}

bool check_conv(const nnx::Conv2dShape& s, std::mt19937& rng) {
  const int64_t p_out = s.out_height(), q_out = s.out_width();
  const std::vector<float> x = random_values(size_t(s.batch * s.in_channels * s.height * s.width), rng);
  const std::vector<float> w =
      random_values(size_t(s.out_channels * s.in_channels * s.kernel_h * s.kernel_w), rng);
  const std::vector<float> b = random_values(size_t(s.out_channels), rng);
  std::vector<float> y(size_t(s.batch * s.out_channels * p_out * q_out));
  nnx::conv2d_forward<float>(y.data(), x.data(), w.data(), b.data(), s);

  std::vector<double> want(y.size());
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t k = 0; k < s.out_channels; ++k)
      for (int64_t p = 0; p < p_out; ++p)
        for (int64_t q = 0; q < q_out; ++q) {
          double sum = b[size_t(k)];
          for (int64_t c = 0; c < s.in_channels; ++c)
            for (int64_t r = 0; r < s.kernel_h; ++r)
              for (int64_t t = 0; t < s.kernel_w; ++t) {
                const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                const int64_t v = q * s.stride_w - s.pad_w + t * s.dilation_w;
                if (h < 0 || h >= s.height || v < 0 || v >= s.width) continue;  // zero padding
                sum += double(x[size_t(((n * s.in_channels + c) * s.height + h) * s.width + v)]) *
                       double(w[size_t(((k * s.in_channels + c) * s.kernel_h + r) * s.kernel_w + t)]);
              }
          want[size_t(((n * s.out_channels + k) * p_out + p) * q_out + q)] = sum;
        }
  char what[96];
  std::snprintf(what, sizeof what, "conv2d %lldx%lldx%lldx%lld -> %lld, %lldx%lld, stride %lld, pad %lld",
                (long long)s.batch, (long long)s.in_channels, (long long)s.height,
                (long long)s.width, (long long)s.out_channels, (long long)s.kernel_h,
                (long long)s.kernel_w, (long long)s.stride_h, (long long)s.pad_h);
  return report(what, y, want, double(s.in_channels * s.kernel_h * s.kernel_w));
}

nnx::Conv2dShape conv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r,
                      int64_t stride, int64_t pad) {
  nnx::Conv2dShape s;
  s.batch = n, s.in_channels = c, s.height = h, s.width = w, s.out_channels = k;
  s.kernel_h = s.kernel_w = r, s.stride_h = s.stride_w = stride, s.pad_h = s.pad_w = pad;
  return s;
}

}  // namespace

int main() {
  std::printf("nnx %s, kernels %s, %d threads\n", nnx::build_info().version.c_str(),
              nnx::isa_name(nnx::active_isa()), nnx::get_num_threads());
  std::mt19937 rng(42);
  bool ok = true;
  // Sizes around the register tiles (6x16, 14x32) and primes, every transposition.
  ok &= check_gemm(1, 1, 1, false, false, rng);
  ok &= check_gemm(13, 31, 7, false, false, rng);
  ok &= check_gemm(64, 48, 37, false, true, rng);
  ok &= check_gemm(29, 65, 130, true, false, rng);
  ok &= check_gemm(200, 120, 400, true, true, rng);
  ok &= check_conv(conv(2, 1, 28, 28, 6, 5, 1, 2), rng);  // LeNet-5's first layer
  ok &= check_conv(conv(3, 6, 14, 14, 16, 5, 1, 0), rng);  // and its second
  ok &= check_conv(conv(2, 3, 11, 13, 5, 3, 2, 1), rng);
  std::printf(ok ? "all kernel checks passed\n" : "SOME KERNEL CHECKS FAILED\n");
  return ok ? 0 : 1;
}
