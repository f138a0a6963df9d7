// Transcendental functions on SIMD registers, written once over the VecF32 interface of each ISA
// (simd/vec-<isa>.h). Polynomials are the classic minimax fits for single precision (Cephes);
// accuracy is a few ulp, checked against the scalar reference in tests/test_kernels_*.py.
// NaN inputs give NaN outputs: every clamp puts the variable second (see VecF32::max).
#pragma once

// Always inlined: they run inside the vector loops of the kernels, where a call would spill the
// live registers around it (GCC declined to inline tanh into the LSTM step kernels).
#define NNX_VMATH inline __attribute__((always_inline))

namespace nnx::kernels::simd {

// e^x. Below -87.3 the result underflows to 0; above 88.3 it is clamped (callers in nnx only pass
// x <= 0 or differences from a row maximum).
template <class V>
NNX_VMATH typename V::R exp(typename V::R x) {
  using R = typename V::R;
  const R lo = V::set1(-87.33654f);
  const typename V::M underflow = V::lt(x, lo);
  x = V::max(lo, V::min(V::set1(88.3762626647949f), x));
  const R n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  R r = V::fnmadd(n, V::set1(0.693359375f), x);  // x - n ln2, in two parts for accuracy
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  R p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  const R y = V::add(V::fmadd(p, V::mul(r, r), r), V::set1(1.0f));
  return V::select(underflow, V::zero(), V::mul(y, V::pow2(n)));
}

// Natural logarithm for positive normal x.
template <class V>
NNX_VMATH typename V::R log(typename V::R x) {
  using R = typename V::R;
  R e;
  R m = V::frexp(x, &e);  // m in [0.5, 1)
  // Shift m into [sqrt(1/2), sqrt(2)) so the polynomial argument stays small.
  const typename V::M small = V::lt(m, V::set1(0.707106781186547524f));
  e = V::select(small, V::sub(e, V::set1(1.0f)), e);
  m = V::sub(V::select(small, V::add(m, m), m), V::set1(1.0f));
  const R z = V::mul(m, m);
  R p = V::set1(7.0376836292e-2f);
  p = V::fmadd(p, m, V::set1(-1.1514610310e-1f));
  p = V::fmadd(p, m, V::set1(1.1676998740e-1f));
  p = V::fmadd(p, m, V::set1(-1.2420140846e-1f));
  p = V::fmadd(p, m, V::set1(1.4249322787e-1f));
  p = V::fmadd(p, m, V::set1(-1.6668057665e-1f));
  p = V::fmadd(p, m, V::set1(2.0000714765e-1f));
  p = V::fmadd(p, m, V::set1(-2.4999993993e-1f));
  p = V::fmadd(p, m, V::set1(3.3333331174e-1f));
  R y = V::mul(V::mul(p, m), z);
  y = V::fmadd(e, V::set1(-2.12194440e-4f), y);
  y = V::fnmadd(V::set1(0.5f), z, y);
  return V::fmadd(e, V::set1(0.693359375f), V::add(m, y));
}

// log(1 + u) for u >= 0, exact for tiny u: log(w) * u / (w - 1) with w = 1 + u corrects the
// rounding of w (Goldberg's trick); when w rounds to 1 the answer is u itself.
template <class V>
NNX_VMATH typename V::R log1p(typename V::R u) {
  using R = typename V::R;
  const R w = V::add(V::set1(1.0f), u);
  const R d = V::sub(w, V::set1(1.0f));
  const typename V::M tiny = V::eq(d, V::zero());
  // d = 1 where tiny so the division is harmless; that lane takes u.
  const R ratio = V::div(u, V::select(tiny, V::set1(1.0f), d));
  return V::select(tiny, u, V::mul(log<V>(V::select(tiny, V::set1(1.0f), w)), ratio));
}

// e^x - 1 for x <= 0, without cancellation near 0: a Taylor polynomial on [-0.5, 0] (truncation
// error below 3e-9), exp(x) - 1 below.
template <class V>
NNX_VMATH typename V::R expm1(typename V::R x) {
  using R = typename V::R;
  R p = V::set1(1.0f / 40320);
  p = V::fmadd(p, x, V::set1(1.0f / 5040));
  p = V::fmadd(p, x, V::set1(1.0f / 720));
  p = V::fmadd(p, x, V::set1(1.0f / 120));
  p = V::fmadd(p, x, V::set1(1.0f / 24));
  p = V::fmadd(p, x, V::set1(1.0f / 6));
  p = V::fmadd(p, x, V::set1(0.5f));
  const R taylor = V::fmadd(V::mul(p, x), x, x);
  return V::select(V::gt(x, V::set1(-0.5f)), taylor, V::sub(exp<V>(x), V::set1(1.0f)));
}

// tanh: odd polynomial for |x| < 0.625 (where 1 - e^-2|x| would cancel), else
// sign(x) (1 - e) / (1 + e) with e = e^(-2|x|).
template <class V>
NNX_VMATH typename V::R tanh(typename V::R x) {
  using R = typename V::R;
  const R a = V::abs(x);
  const R e = exp<V>(V::mul(V::set1(-2.0f), a));
  // 1 + e lies in (1, 2]: the reciprocal estimate is safe there.
  R big = V::mul(V::sub(V::set1(1.0f), e), V::recip(V::add(V::set1(1.0f), e)));
  big = V::select(V::lt(x, V::zero()), V::sub(V::zero(), big), big);
  const R z = V::mul(x, x);
  R p = V::set1(-5.70498872745e-3f);
  p = V::fmadd(p, z, V::set1(2.06390887954e-2f));
  p = V::fmadd(p, z, V::set1(-5.37397155531e-2f));
  p = V::fmadd(p, z, V::set1(1.33314422036e-1f));
  p = V::fmadd(p, z, V::set1(-3.33332819422e-1f));
  const R small = V::fmadd(V::mul(p, z), x, x);
  // a < 0.625 is false for NaN, so NaN takes the `big` branch, which propagates it.
  return V::select(V::lt(a, V::set1(0.625f)), small, big);
}

// The logistic function 1 / (1 + e^-x), with two branches so that exp never overflows.
template <class V>
NNX_VMATH typename V::R sigmoid(typename V::R x) {
  const typename V::R e = exp<V>(V::sub(V::zero(), V::abs(x)));
  const typename V::R r = V::recip(V::add(V::set1(1.0f), e));  // 1 + e lies in (1, 2]
  return V::select(V::ge(x, V::zero()), r, V::mul(e, r));  // NaN: e * r = NaN
}

// The logistic function in one branch, 1 / (1 + e^-x): cheaper than sigmoid() (no select), with
// the same accuracy away from the tails; for x < -87 the result is 0 instead of a denormal. exp's
// clamping keeps 1 + e^-x finite, so the reciprocal estimate is safe.
template <class V>
NNX_VMATH typename V::R logistic(typename V::R x) {
  return V::recip(V::add(V::set1(1.0f), exp<V>(V::sub(V::zero(), x))));
}

// tanh(x) = 2 logistic(2x) - 1: a third fewer operations than tanh(), with an absolute error
// below 2e-7 but no small relative error near 0 (it rounds at the scale of 1). For activations
// inside a layer, such as the LSTM's, where only absolute errors propagate.
template <class V>
NNX_VMATH typename V::R tanh_absolute(typename V::R x) {
  const typename V::R two = V::set1(2.0f);
  return V::fmadd(two, logistic<V>(V::mul(two, x)), V::set1(-1.0f));
}

}  // namespace nnx::kernels::simd
