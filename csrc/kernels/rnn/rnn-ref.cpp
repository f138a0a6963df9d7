// Scalar reference of the recurrent step kernels and the embedding gather/scatter, float and
// double: the textbook formulas of rnn.h, one element at a time.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "act/act.h"
#include "rnn/rnn.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnx::kernels::ref {

template <typename T>
void lstm_step_forward(const LstmStep<T>& s) {
  for (int64_t j = 0; j < s.units; ++j) {
    T* zi = s.gate(j, 0);
    T* zf = s.gate(j, 1);
    T* zg = s.gate(j, 2);
    T* zo = s.gate(j, 3);
    const T* c_prev = s.c_prev + j * s.state_ld;
    T* c = s.c + j * s.state_ld;
    T* h = s.h + j * s.state_ld;
    for (int64_t b = 0; b < s.batch; ++b) {
      const T i = sigmoid(zi[b]), f = sigmoid(zf[b]), g = std::tanh(zg[b]), o = sigmoid(zo[b]);
      zi[b] = i, zf[b] = f, zg[b] = g, zo[b] = o;
      c[b] = f * c_prev[b] + i * g;
      h[b] = o * std::tanh(c[b]);
    }
  }
}

template <typename T>
void lstm_step_backward(const LstmStep<T>& s) {
  for (int64_t j = 0; j < s.units; ++j) {
    const T* gi = s.gate(j, 0);
    const T* gf = s.gate(j, 1);
    const T* gg = s.gate(j, 2);
    const T* go = s.gate(j, 3);
    T* di = s.dz_gate(j, 0);
    T* df = s.dz_gate(j, 1);
    T* dg = s.dz_gate(j, 2);
    T* dout = s.dz_gate(j, 3);
    const T* c_prev = s.c_prev + j * s.state_ld;
    const T* c = s.c + j * s.state_ld;
    const T* dh = s.dh + j * s.dh_ld;
    T* dc = s.dc + j * s.dc_ld;
    for (int64_t b = 0; b < s.batch; ++b) {
      const T i = gi[b], f = gf[b], g = gg[b], o = go[b];
      const T tc = std::tanh(c[b]);
      const T dct = dc[b] + dh[b] * o * (1 - tc * tc);
      di[b] = dct * g * i * (1 - i);
      df[b] = dct * c_prev[b] * f * (1 - f);
      dg[b] = dct * i * (1 - g * g);
      dout[b] = dh[b] * tc * o * (1 - o);
      dc[b] = dct * f;
    }
  }
}

template <typename T>
void rnn_step_forward(const RnnStep<T>& s) {
  for (int64_t j = 0; j < s.units; ++j) {
    T* h = s.h + j * s.h_ld;
    for (int64_t b = 0; b < s.batch; ++b)
      h[b] = s.relu ? (h[b] > 0 || std::isnan(h[b]) ? h[b] : T(0)) : std::tanh(h[b]);
  }
}

template <typename T>
void rnn_step_backward(const RnnStep<T>& s) {
  for (int64_t j = 0; j < s.units; ++j) {
    const T* h = s.h + j * s.h_ld;
    const T* dh = s.dh + j * s.dh_ld;
    T* dz = s.dz + j * s.dz_ld;
    for (int64_t b = 0; b < s.batch; ++b)
      dz[b] = s.relu ? (h[b] > 0 ? dh[b] : T(0)) : dh[b] * (1 - h[b] * h[b]);
  }
}

template <typename T>
void gather_transposed(T* out, int64_t ld_out, const T* table, int64_t ld_table,
                       const int32_t* ids, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < n; ++b) out[r * ld_out + b] = table[ids[b] * ld_table + r];
}

template <typename T>
void scatter_add_transposed(T* table, int64_t ld_table, const T* in, int64_t ld_in,
                            const int32_t* ids, int64_t rows, int64_t n) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t r = 0; r < rows; ++r) table[ids[b] * ld_table + r] += in[r * ld_in + b];
}

template <typename T>
void embedding_gather(T* y, const T* weight, const int64_t* indices, int64_t n, int64_t dim,
                      int threads) {
  const bool parallel = threads > 1 && n * dim >= (int64_t(1) << 16);
  (void)parallel;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
  for (int64_t p = 0; p < n; ++p)
    std::memcpy(y + p * dim, weight + indices[p] * dim, size_t(dim) * sizeof(T));
}

template <typename T>
void embedding_scatter_add(T* grad_weight, const T* grad_y, const int64_t* indices, int64_t n,
                           int64_t num_embeddings, int64_t dim, int64_t padding_idx, int threads) {
  const int teams = threads > 1 && n * dim >= (int64_t(1) << 16)
                        ? int(std::min<int64_t>(threads, num_embeddings)) : 1;
#pragma omp parallel num_threads(teams) if (teams > 1)
  {
    int team = 0;
#ifdef _OPENMP
    team = omp_get_thread_num();
#endif
    const int64_t v0 = num_embeddings * team / teams, v1 = num_embeddings * (team + 1) / teams;
    std::fill(grad_weight + v0 * dim, grad_weight + v1 * dim, T(0));
    for (int64_t p = 0; p < n; ++p) {
      const int64_t v = indices[p];
      if (v < v0 || v >= v1 || v == padding_idx) continue;
      T* row = grad_weight + v * dim;
      const T* g = grad_y + p * dim;
      for (int64_t d = 0; d < dim; ++d) row[d] += g[d];
    }
  }
}

#define NNX_INSTANTIATE(T)                                                                        \
  template void lstm_step_forward<T>(const LstmStep<T>&);                                         \
  template void lstm_step_backward<T>(const LstmStep<T>&);                                        \
  template void rnn_step_forward<T>(const RnnStep<T>&);                                           \
  template void rnn_step_backward<T>(const RnnStep<T>&);                                          \
  template void gather_transposed<T>(T*, int64_t, const T*, int64_t, const int32_t*, int64_t,     \
                                     int64_t);                                                    \
  template void scatter_add_transposed<T>(T*, int64_t, const T*, int64_t, const int32_t*,         \
                                          int64_t, int64_t);                                      \
  template void embedding_gather<T>(T*, const T*, const int64_t*, int64_t, int64_t, int);         \
  template void embedding_scatter_add<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, \
                                         int64_t, int);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx::kernels::ref
