// 16 floats in a zmm register: the operations the generic SIMD kernels (simd/*.h templates) use.
// Only for files compiled with the AVX-512 flags (names ending in -avx512.cpp).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace nnx::kernels::avx512 {

struct VecF32 {
  using R = __m512;
  using M = __mmask16;  // a lane predicate
  static constexpr int kWidth = 16;

  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  // The first `count` (< 16) lanes; the others read as `fill` and are not written.
  static R load_partial(const float* p, int count, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), __mmask16((1u << count) - 1), p);
  }
  static void store_partial(float* p, R v, int count) {
    _mm512_mask_storeu_ps(p, __mmask16((1u << count) - 1), v);
  }
  // Lanes [lo, hi) of p (0 <= lo <= hi <= 16), `fill` elsewhere; lanes outside are never read.
  static R load_lanes(const float* p, int lo, int hi, float fill = 0.0f) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill),
                                __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1)), p);
  }
  // Lanes 0, 2, ..., 14 of a, then lanes 0, 2, ..., 14 of b: the even elements of a 32-float row.
  static R even_lanes(R a, R b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
  }
  // Lanes 1, 3, ..., 15 of a, then lanes 1, 3, ..., 15 of b: the odd elements of a 32-float row.
  static R odd_lanes(R a, R b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
  }
  // Lanes 0..7 of a and b interleaved (a0 b0 a1 b1 ...), then lanes 8..15 likewise: the
  // inverse of even_lanes / odd_lanes.
  static R zip_lo(R a, R b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
  }
  static R zip_hi(R a, R b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
  }
  // The first `count` int64 values of p as floats (rounded), lanes past count 0.
  static R load_int64_as_float(const int64_t* p, int count) {
    const unsigned mask = count >= 16 ? 0xffffu : (1u << count) - 1;
    const __m256 lo = _mm512_cvtepi64_ps(_mm512_maskz_loadu_epi64(__mmask8(mask), p));
    const __m256 hi = _mm512_cvtepi64_ps(_mm512_maskz_loadu_epi64(__mmask8(mask >> 8), p + 8));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
  }
  // The first `count` lanes, which hold integral values, as int64.
  static void store_as_int64(int64_t* p, R v, int count) {
    const unsigned mask = count >= 16 ? 0xffffu : (1u << count) - 1;
    _mm512_mask_storeu_epi64(p, __mmask8(mask), _mm512_cvttps_epi64(_mm512_castps512_ps256(v)));
    _mm512_mask_storeu_epi64(p + 8, __mmask8(mask >> 8),
                             _mm512_cvttps_epi64(_mm512_extractf32x8_ps(v, 1)));
  }
  // Lane l <- lane idx[l] of the 32 floats a, b (idx[l] < 32): a window of up to 32 floats
  // rearranged, e.g. positions of an image that span several rows gathered into one vector.
  using I = __m512i;
  static I load_index(const int32_t* p) { return _mm512_loadu_si512(p); }
  static R permute2(R a, R b, I idx) { return _mm512_permutex2var_ps(a, idx, b); }
  static R iota() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  // Transposes the 16 x 16 block in r (row i in r[i]) in place: three shuffle stages, 64
  // shuffles.
  static void transpose(R r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved: per 128-bit lane [a0 b0 a1 b1]
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  // u[4g + j], lane L: rows 4g..4g+3 at column 4L + j
      u[i + 0] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
      u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
      u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {  // gather lane L of the four row groups: column 4L + j
      const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
      const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
      const __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
      const __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
      r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
      r[8 + j] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
      r[4 + j] = _mm512_shuffle_f32x4(v1, v3, 0x88);
      r[12 + j] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
  }
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }   // a * b + c
  static R fnmadd(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); } // c - a * b
  // 1 / a from the 14-bit estimate and one Newton step: within an ulp of a division, at a
  // fraction of its cost (a 16-lane division takes ~10 cycles). Finite nonzero a only.
  static R recip(R a) {
    const R x = _mm512_rcp14_ps(a);
    return fmadd(x, fnmadd(a, x, set1(1.0f)), x);  // x + x (1 - a x)
  }
  // x86 min/max return the second operand when either is NaN: callers put the variable second
  // (max(zero, x)) so that NaN propagates.
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static R min(R a, R b) { return _mm512_min_ps(a, b); }
  static R sqrt(R a) { return _mm512_sqrt_ps(a); }
  static R abs(R a) { return _mm512_abs_ps(a); }
  static R round(R a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static M gt(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M ge(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static M lt(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M eq(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M both(M a, M b) { return a & b; }
  static M either(M a, M b) { return a | b; }
  static M is_nan(R a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static M not_nan(R a) { return _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q); }
  // Bit l set where lane l of the predicate is true.
  static unsigned bits(M m) { return m; }
  static R select(M m, R if_true, R if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
  // 2^n for integral n in [-126, 127], built directly in the exponent field.
  static R pow2(R n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  // x = m * 2^e with m in [0.5, 1), for positive normal x.
  static R frexp(R x, R* e) {
    const __m512i bits = _mm512_castps_si512(x);
    *e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x807fffff)),
                                               _mm512_set1_epi32(0x3f000000)));
  }
  static float reduce_add(R v) {
    // Fixed pairwise order, so a row's sum never depends on anything but its values.
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
  static float reduce_max(R v) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
  }
};

}  // namespace nnx::kernels::avx512
