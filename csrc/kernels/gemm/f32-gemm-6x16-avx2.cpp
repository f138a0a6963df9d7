// f32_gemm_ukernel_6x16__avx2: a 6 x 16 register tile of C in 12 ymm accumulators (AVX2 + FMA).
// 12 accumulators + 2 B vectors + 1 broadcast fill the 16 ymm registers.
#include <immintrin.h>

#include <array>
#include <utility>

#include "gemm/gemm.h"

namespace nnx::kernels::avx2 {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

// All-ones in lanes [0, n) of an 8-float vector, for n in [0, 8].
inline __m256i first_lanes(int n) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
}

template <bool kFullN>
inline __m256 load(const float* x, __m256i mask) {
  return kFullN ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, mask);
}

template <bool kFullN>
inline void write_back(float* c, __m256 acc, __m256i mask, const SgemmTile& t, int row, int col) {
  __m256 v = _mm256_mul_ps(acc, _mm256_set1_ps(t.alpha));
  if (t.beta != 0.0f) v = _mm256_fmadd_ps(_mm256_set1_ps(t.beta), load<kFullN>(c, mask), v);
  if (t.bias_row) v = _mm256_add_ps(v, _mm256_set1_ps(t.bias_row[row]));
  if (t.bias_col) v = _mm256_add_ps(v, load<kFullN>(t.bias_col + col, mask));
  if (t.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
  if (kFullN)
    _mm256_storeu_ps(c, v);
  else
    _mm256_maskstore_ps(c, mask, v);
}

// M rows, NV vectors of 8 columns; kPacked: packed A; kFullN: n == 8 * NV, no masks needed.
template <int M, int NV, bool kPacked, bool kFullN>
void tile(const SgemmTile& t) {
  // Every loop over acc is fully unrolled: GCC keeps the array in registers only then.
  __m256 acc[M][NV];
  #pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
    #pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();

  const __m256i mask[2] = {first_lanes(t.n), first_lanes(t.n - 8)};
  const int64_t a_rs = kPacked ? 1 : t.a_rs;
  const int64_t a_cs = kPacked ? kMR : t.a_cs;
  const int64_t ldb = t.ldb;
  const float* a = t.a;
  const float* b = t.b;
  for (int64_t p = 0; p < t.k; ++p) {
    __m256 bv[NV];
    #pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = load<kFullN>(b + 8 * v, mask[v]);
    #pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * a_rs);
      #pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += a_cs;
    b += ldb;
  }

  #pragma GCC unroll 16

  for (int i = 0; i < M; ++i) {
    float* c = t.c + i * t.ldc;
    #pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) write_back<kFullN>(c + 8 * v, acc[i][v], mask[v], t, i, 8 * v);
  }
}

template <int NV, bool kPacked, bool kFullN, size_t... I>
constexpr std::array<SgemmUkernel, kMR> row_variants(std::index_sequence<I...>) {
  return {&tile<int(I) + 1, NV, kPacked, kFullN>...};
}
// Indexed by [packed][full_n][nv - 1][m - 1].
using RowTable = std::array<SgemmUkernel, kMR>;
constexpr auto kRows = std::make_index_sequence<kMR>();
constexpr std::array<std::array<std::array<RowTable, 2>, 2>, 2> kTiles = {{
    {{{{row_variants<1, false, false>(kRows), row_variants<2, false, false>(kRows)}},
      {{row_variants<1, false, true>(kRows), row_variants<2, false, true>(kRows)}}}},
    {{{{row_variants<1, true, false>(kRows), row_variants<2, true, false>(kRows)}},
      {{row_variants<1, true, true>(kRows), row_variants<2, true, true>(kRows)}}}},
}};

}  // namespace

void f32_gemm_ukernel_6x16__avx2(const SgemmTile& t) {
  const bool packed = t.a_rs == 1 && t.a_cs == kMR;
  const int nv = t.n > 8 ? 2 : 1;
  const bool full = t.n == 8 * nv;
  kTiles[packed][full][nv - 1][t.m - 1](t);
}

}  // namespace nnx::kernels::avx2
