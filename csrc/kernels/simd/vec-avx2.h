// 8 floats in a ymm register (AVX2 + FMA): the same interface as avx512::VecF32.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace nnx::kernels::avx2 {

struct VecF32 {
  using R = __m256;
  using M = __m256;  // a lane predicate: all-ones or all-zeros lanes
  static constexpr int kWidth = 8;

  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  // The first `count` (< 8) lanes, through a buffer: AVX2's masked moves are slow on some CPUs.
  static R load_partial(const float* p, int count, float fill) {
    alignas(32) float buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = i < count ? p[i] : fill;
    return _mm256_load_ps(buf);
  }
  static void store_partial(float* p, R v, int count) {
    alignas(32) float buf[8];
    _mm256_store_ps(buf, v);
    for (int i = 0; i < count; ++i) p[i] = buf[i];
  }
  // Lanes [lo, hi) of p (0 <= lo <= hi <= 8), `fill` elsewhere; lanes outside are never read.
  static R load_lanes(const float* p, int lo, int hi, float fill = 0.0f) {
    if (lo == 0 && hi == 8) return _mm256_loadu_ps(p);
    alignas(32) float buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = i >= lo && i < hi ? p[i] : fill;
    return _mm256_load_ps(buf);
  }
  // Lanes 0, 2, 4, 6 of a, then lanes 0, 2, 4, 6 of b: the even elements of a 16-float row.
  static R even_lanes(R a, R b) {
    const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 a4 a6 b4 b6
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  // Lanes 1, 3, 5, 7 of a, then lanes 1, 3, 5, 7 of b: the odd elements of a 16-float row.
  static R odd_lanes(R a, R b) {
    const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));  // a1 a3 b1 b3 a5 a7 b5 b7
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  // Lanes 0..3 of a and b interleaved (a0 b0 a1 b1 ...), then lanes 4..7 likewise: the
  // inverse of even_lanes / odd_lanes.
  static R zip_lo(R a, R b) {
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x20);
  }
  static R zip_hi(R a, R b) {
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x31);
  }
  // The first `count` int64 values of p as floats (rounded), lanes past count 0.
  static R load_int64_as_float(const int64_t* p, int count) {
    alignas(32) float buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = i < count ? float(p[i]) : 0.0f;
    return _mm256_load_ps(buf);
  }
  // The first `count` lanes, which hold integral values, as int64.
  static void store_as_int64(int64_t* p, R v, int count) {
    alignas(32) float buf[8];
    _mm256_store_ps(buf, v);
    for (int i = 0; i < count; ++i) p[i] = int64_t(buf[i]);
  }
  // Lane l <- lane idx[l] of the 16 floats a, b (idx[l] < 16): see the AVX-512 type. vpermps
  // takes the low 3 bits of each index; bit 3 picks a or b.
  using I = __m256i;
  static I load_index(const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static R permute2(R a, R b, I idx) {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, idx), _mm256_permutevar8x32_ps(b, idx),
                            _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  }
  static R iota() { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
  // Transposes the 8 x 8 block in r (row i in r[i]) in place.
  static void transpose(R r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
      u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
      u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
      r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
      r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
  }
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R div(R a, R b) { return _mm256_div_ps(a, b); }
  static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R fnmadd(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
  // 1 / a from the 12-bit estimate and one Newton step: within 2 ulp of a division, at a
  // fraction of its cost. Finite nonzero a only.
  static R recip(R a) {
    const R x = _mm256_rcp_ps(a);
    return fmadd(x, fnmadd(a, x, set1(1.0f)), x);  // x + x (1 - a x)
  }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R min(R a, R b) { return _mm256_min_ps(a, b); }
  static R sqrt(R a) { return _mm256_sqrt_ps(a); }
  static R abs(R a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static R round(R a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static M gt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M ge(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static M lt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M eq(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M both(M a, M b) { return _mm256_and_ps(a, b); }
  static M either(M a, M b) { return _mm256_or_ps(a, b); }
  static M is_nan(R a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static M not_nan(R a) { return _mm256_cmp_ps(a, a, _CMP_ORD_Q); }
  // Bit l set where lane l of the predicate is true.
  static unsigned bits(M m) { return unsigned(_mm256_movemask_ps(m)); }
  static R select(M m, R if_true, R if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
  static R pow2(R n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static R frexp(R x, R* e) {
    const __m256i bits = _mm256_castps_si256(x);
    *e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x807fffff)),
                                               _mm256_set1_epi32(0x3f000000)));
  }
  static float reduce_add(R v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
  static float reduce_max(R v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
};

}  // namespace nnx::kernels::avx2
