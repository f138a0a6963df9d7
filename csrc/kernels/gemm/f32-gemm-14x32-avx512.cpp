// f32_gemm_ukernel_14x32__avx512: a 14 x 32 register tile of C in 28 zmm accumulators.
// Per step of k: two 16-float loads of B, fourteen broadcasts of A, 28 FMAs; with two FMA pipes
// that is 14 cycles of FMA work against 16 loads, so the FMA pipes stay the bottleneck.
#include <immintrin.h>

#include <array>
#include <utility>

#include "gemm/gemm.h"

namespace nnx::kernels::avx512 {
namespace {

constexpr int kMR = 14;
constexpr int kNR = 32;

// Lanes [0, n) of a 16-float vector, for n in [0, 16].
inline __mmask16 first_lanes(int n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

inline void write_back(float* c, __m512 acc, __mmask16 mask, const SgemmTile& t, int row, int col) {
  __m512 v = _mm512_mul_ps(acc, _mm512_set1_ps(t.alpha));
  if (t.beta != 0.0f)
    v = _mm512_fmadd_ps(_mm512_set1_ps(t.beta), _mm512_maskz_loadu_ps(mask, c), v);
  if (t.bias_row) v = _mm512_add_ps(v, _mm512_set1_ps(t.bias_row[row]));
  if (t.bias_col) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, t.bias_col + col));
  if (t.relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
  _mm512_mask_storeu_ps(c, mask, v);
}

// M rows of A, NV vectors of 16 columns; kPacked: A is a packed micro-panel (compile-time strides).
template <int M, int NV, bool kPacked>
void tile(const SgemmTile& t) {
  // Every loop over acc is fully unrolled: GCC keeps the array in registers only then.
  __m512 acc[M][NV];
  #pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
    #pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();

  // Pull the C tile towards L1 now, so the write-back after the k loop does not wait on memory.
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(t.c + i * t.ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(t.c + i * t.ldc + 16 * NV - 1), _MM_HINT_T0);
  }
  const __mmask16 mask[2] = {first_lanes(t.n), first_lanes(t.n - 16)};
  const int64_t a_rs = kPacked ? 1 : t.a_rs;
  const int64_t a_cs = kPacked ? kMR : t.a_cs;
  const int64_t ldb = t.ldb;
  const float* a = t.a;
  const float* b = t.b;
  for (int64_t p = 0; p < t.k; ++p) {
    __m512 bv[NV];
    #pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
    #pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * a_rs]);
      #pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += a_cs;
    b += ldb;
  }

  #pragma GCC unroll 16

  for (int i = 0; i < M; ++i) {
    float* c = t.c + i * t.ldc;
    #pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) write_back(c + 16 * v, acc[i][v], mask[v], t, i, 16 * v);
  }
}

// Every (rows, vectors, packed) combination, indexed by [packed][nv - 1][m - 1].
template <int NV, bool kPacked, size_t... I>
constexpr std::array<SgemmUkernel, kMR> row_variants(std::index_sequence<I...>) {
  return {&tile<int(I) + 1, NV, kPacked>...};
}
constexpr std::array<std::array<std::array<SgemmUkernel, kMR>, 2>, 2> kTiles = {{
    {{row_variants<1, false>(std::make_index_sequence<kMR>()),
      row_variants<2, false>(std::make_index_sequence<kMR>())}},
    {{row_variants<1, true>(std::make_index_sequence<kMR>()),
      row_variants<2, true>(std::make_index_sequence<kMR>())}},
}};

}  // namespace

void f32_gemm_ukernel_14x32__avx512(const SgemmTile& t) {
  const bool packed = t.a_rs == 1 && t.a_cs == kMR;
  kTiles[packed][t.n > 16][t.m - 1](t);
}

}  // namespace nnx::kernels::avx512
