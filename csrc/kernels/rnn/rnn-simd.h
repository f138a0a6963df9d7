// The recurrent step kernels of rnn/rnn.h over a VecF32 type: included by f32-rnn-<isa>.cpp.
// Each unit's row of `batch` values is walked a vector at a time (the last one masked), with the
// formulas of rnn-ref.cpp. The LSTM's gates use the one-branch logistic and tanh_absolute
// (simd/vmath.h): five of them per value made the gate kernel a sixth of a forward step, and
// inside the cell only absolute errors matter.
#pragma once

#include "rnn/rnn.h"
#include "simd/loops.h"
#include "simd/vmath.h"

namespace nnx::kernels::simd {

// A block whose rows are back to back (every row stride equals batch, as the runtime's dense
// step blocks are) as one row of units * batch values: one vector loop instead of one per unit,
// the mask only at its very end.
inline LstmStep<float> one_row(LstmStep<float> s) {
  const bool dense = s.gates_ld == s.batch && s.state_ld == s.batch &&
                     (!s.dh || s.dh_ld == s.batch) && (!s.dc || s.dc_ld == s.batch) &&
                     (!s.dz || s.dz_ld == s.batch);
  if (dense) s.batch *= s.units, s.units = 1;
  return s;
}
inline RnnStep<float> one_row(RnnStep<float> s) {
  const bool dense = s.h_ld == s.batch && (!s.dh || s.dh_ld == s.batch) &&
                     (!s.dz || s.dz_ld == s.batch);
  if (dense) s.batch *= s.units, s.units = 1;
  return s;
}

template <class V>
void lstm_step_forward(const LstmStep<float>& step) {
  using R = typename V::R;
  const LstmStep<float> s = one_row(step);
  for (int64_t j = 0; j < s.units; ++j) {
    float* zi = s.gate(j, 0);
    float* zf = s.gate(j, 1);
    float* zg = s.gate(j, 2);
    float* zo = s.gate(j, 3);
    const float* c_prev = s.c_prev + j * s.state_ld;
    float* c = s.c + j * s.state_ld;
    float* h = s.h + j * s.state_ld;
    for_vectors<V>(0, s.batch, [&](int64_t b, int n) {
      const R i = logistic<V>(load<V>(zi + b, n)), f = logistic<V>(load<V>(zf + b, n));
      const R g = tanh_absolute<V>(load<V>(zg + b, n)), o = logistic<V>(load<V>(zo + b, n));
      store<V>(zi + b, i, n);
      store<V>(zf + b, f, n);
      store<V>(zg + b, g, n);
      store<V>(zo + b, o, n);
      const R ct = V::add(V::mul(f, load<V>(c_prev + b, n)), V::mul(i, g));
      store<V>(c + b, ct, n);
      store<V>(h + b, V::mul(o, tanh_absolute<V>(ct)), n);
    });
  }
}

template <class V>
void lstm_step_backward(const LstmStep<float>& step) {
  using R = typename V::R;
  const R one = V::set1(1.0f);
  const LstmStep<float> s = one_row(step);
  for (int64_t j = 0; j < s.units; ++j) {
    const float* gi = s.gate(j, 0);
    const float* gf = s.gate(j, 1);
    const float* gg = s.gate(j, 2);
    const float* go = s.gate(j, 3);
    float* di = s.dz_gate(j, 0);
    float* df = s.dz_gate(j, 1);
    float* dg = s.dz_gate(j, 2);
    float* dout = s.dz_gate(j, 3);
    const float* c_prev = s.c_prev + j * s.state_ld;
    const float* c = s.c + j * s.state_ld;
    const float* dh = s.dh + j * s.dh_ld;
    float* dc = s.dc + j * s.dc_ld;
    for_vectors<V>(0, s.batch, [&](int64_t b, int n) {
      const R i = load<V>(gi + b, n), f = load<V>(gf + b, n);
      const R g = load<V>(gg + b, n), o = load<V>(go + b, n);
      const R tc = tanh_absolute<V>(load<V>(c + b, n)), d = load<V>(dh + b, n);
      const R dct = V::add(load<V>(dc + b, n),
                           V::mul(V::mul(d, o), V::sub(one, V::mul(tc, tc))));
      store<V>(di + b, V::mul(V::mul(dct, g), V::mul(i, V::sub(one, i))), n);
      store<V>(df + b, V::mul(V::mul(dct, load<V>(c_prev + b, n)), V::mul(f, V::sub(one, f))), n);
      store<V>(dg + b, V::mul(V::mul(dct, i), V::sub(one, V::mul(g, g))), n);
      store<V>(dout + b, V::mul(V::mul(d, tc), V::mul(o, V::sub(one, o))), n);
      store<V>(dc + b, V::mul(dct, f), n);
    });
  }
}

template <class V>
void rnn_step_forward(const RnnStep<float>& step) {
  const RnnStep<float> s = one_row(step);
  for (int64_t j = 0; j < s.units; ++j) {
    float* h = s.h + j * s.h_ld;
    for_vectors<V>(0, s.batch, [&](int64_t b, int n) {
      const typename V::R z = load<V>(h + b, n);
      store<V>(h + b, s.relu ? V::max(V::zero(), z) : tanh<V>(z), n);
    });
  }
}

template <class V>
void rnn_step_backward(const RnnStep<float>& step) {
  using R = typename V::R;
  const RnnStep<float> s = one_row(step);
  for (int64_t j = 0; j < s.units; ++j) {
    const float* h = s.h + j * s.h_ld;
    const float* dh = s.dh + j * s.dh_ld;
    float* dz = s.dz + j * s.dz_ld;
    for_vectors<V>(0, s.batch, [&](int64_t b, int n) {
      const R hv = load<V>(h + b, n), d = load<V>(dh + b, n);
      store<V>(dz + b,
               s.relu ? V::select(V::gt(hv, V::zero()), d, V::zero())
                      : V::mul(d, V::sub(V::set1(1.0f), V::mul(hv, hv))),
               n);
    });
  }
}

// Each position's run of units is one (masked) vector load from its table row, and the register
// transpose turns a block feature-major (a hardware gather per element took nearly twice as
// long).
template <class V>
void gather_transposed(float* out, int64_t ld_out, const float* table, int64_t ld_table,
                       const int32_t* ids, int64_t rows, int64_t n) {
  for_transposed_blocks<V>(
      n, rows,
      [&](int64_t b, int64_t r0, int count) { return load<V>(table + ids[b] * ld_table + r0, count); },
      [&](int64_t r, int64_t b0, typename V::R v, int count) {
        store<V>(out + r * ld_out + b0, v, count);
      });
}

// The other way: each position's run of units is added to its id's row, positions in order.
template <class V>
void scatter_add_transposed(float* table, int64_t ld_table, const float* in, int64_t ld_in,
                            const int32_t* ids, int64_t rows, int64_t n) {
  for_transposed_blocks<V>(
      rows, n, [&](int64_t r, int64_t b0, int count) { return load<V>(in + r * ld_in + b0, count); },
      [&](int64_t b, int64_t r0, typename V::R v, int count) {
        float* row = table + ids[b] * ld_table + r0;
        store<V>(row, V::add(load<V>(row, count), v), count);
      });
}

template <class V>
const RnnKernels& rnn_table() {
  static const RnnKernels table = {&lstm_step_forward<V>, &lstm_step_backward<V>,
                                   &rnn_step_forward<V>, &rnn_step_backward<V>,
                                   &gather_transposed<V>, &scatter_add_transposed<V>,
                                   &transpose<V>};
  return table;
}

}  // namespace nnx::kernels::simd
