// Recurrent layers: the elementwise part of one time step (LSTM gates and cell update, RNN
// activation) and their backward, plus the embedding gather/scatter. The recurrent GEMMs around
// them are the runtime's business (csrc/runtime/rnn.cpp).
//
// Layout is feature-major: row j holds hidden unit j's values for the `batch` sequences, so that
// the recurrent GEMM z^T = W_hh h^T has the large 4H dimension as its rows (full register tiles)
// and the batch as its columns. A kernel call covers a block of `units` consecutive units; every
// element is computed independently, so results never depend on how blocks are split between
// threads.
#pragma once

#include <cstdint>

namespace nnx::kernels {

// One LSTM time step for a block of units. Row j of gate q (q = 0..3 for i, f, g, o) starts at
// gates + q * gate_stride + j * gates_ld, and at dz + q * dz_gate_stride + j * dz_ld in dz.
// States c_prev, c and h share state_ld.
template <typename T>
struct LstmStep {
  int64_t units, batch;
  T* gates;  // forward: pre-activations in, activated gates out; backward: activated gates
  int64_t gates_ld, gate_stride;
  const T* c_prev;  // c_{t-1}
  T* c;             // c_t: written by forward, read by backward
  T* h;             // h_t: written by forward
  int64_t state_ld;
  // Backward only.
  const T* dh;  // gradient reaching h_t (from y and from step t + 1)
  int64_t dh_ld;
  T* dc;  // in: gradient reaching c_t from step t + 1; out: gradient reaching c_{t-1}
  int64_t dc_ld;
  T* dz;  // out: gradient of the pre-activations
  int64_t dz_ld, dz_gate_stride;

  // Unit j's row of gate k (0 input, 1 forget, 2 cell, 3 output) and of its gradient.
  T* gate(int64_t j, int k) const { return gates + j * gates_ld + k * gate_stride; }
  T* dz_gate(int64_t j, int k) const { return dz + j * dz_ld + k * dz_gate_stride; }
};

// One Elman RNN time step for a block of units: h = act(z) in place (forward), and
// dz = dh * act'(h) (backward; dz may alias dh).
template <typename T>
struct RnnStep {
  int64_t units, batch;
  bool relu;  // else tanh
  T* h;
  int64_t h_ld;
  const T* dh;
  int64_t dh_ld;
  T* dz;
  int64_t dz_ld;
};

struct RnnKernels {
  // i, f, o = sigmoid(z), g = tanh(z); c = f c_prev + i g; h = o tanh(c).
  void (*lstm_step_forward)(const LstmStep<float>& s);
  // With dc' = dc + dh o (1 - tanh(c)^2): dz_i = dc' g i (1 - i), dz_f = dc' c_prev f (1 - f),
  // dz_g = dc' i (1 - g^2), dz_o = dh tanh(c) o (1 - o); dc = dc' f.
  void (*lstm_step_backward)(const LstmStep<float>& s);
  void (*rnn_step_forward)(const RnnStep<float>& s);
  void (*rnn_step_backward)(const RnnStep<float>& s);
  // out[r][b] = table[ids[b]][r] for r < rows, b < n: the rows of an embedding's input
  // projection (V, G H) that one step's positions select, transposed into the step's
  // feature-major block. out and table have row strides ld_out, ld_table.
  void (*gather_transposed)(float* out, int64_t ld_out, const float* table, int64_t ld_table,
                            const int32_t* ids, int64_t rows, int64_t n);
  // table[ids[b]][r] += in[r][b] for r < rows, b in order 0..n-1: the transpose of
  // gather_transposed, summing a step's pre-activation gradients into the projection rows of
  // the ids they came from (repeated ids add up in order of b).
  void (*scatter_add_transposed)(float* table, int64_t ld_table, const float* in, int64_t ld_in,
                                 const int32_t* ids, int64_t rows, int64_t n);
  // dst (cols x rows) = src (rows x cols)^T: the moves between batch-major arrays (x, y, grad_y,
  // states) and the feature-major blocks of the steps.
  void (*transpose)(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                    int64_t cols);
};

namespace avx2 { const RnnKernels& rnn_kernels(); }
namespace avx512 { const RnnKernels& rnn_kernels(); }

namespace ref {
template <typename T>
void lstm_step_forward(const LstmStep<T>& s);
template <typename T>
void lstm_step_backward(const LstmStep<T>& s);
template <typename T>
void rnn_step_forward(const RnnStep<T>& s);
template <typename T>
void rnn_step_backward(const RnnStep<T>& s);
template <typename T>
void gather_transposed(T* out, int64_t ld_out, const T* table, int64_t ld_table,
                       const int32_t* ids, int64_t rows, int64_t n);
template <typename T>
void scatter_add_transposed(T* table, int64_t ld_table, const T* in, int64_t ld_in,
                            const int32_t* ids, int64_t rows, int64_t n);

// y (n, dim) = weight rows at indices (already checked to lie in range), rows in parallel.
template <typename T>
void embedding_gather(T* y, const T* weight, const int64_t* indices, int64_t n, int64_t dim,
                      int threads);
// grad_weight (num_embeddings, dim) = 0, then += grad_y row p at row indices[p] for p = 0..n-1 in
// order. Threads own disjoint ranges of weight rows and each scans all indices, so every row's
// sum runs in position order whatever the thread count. padding_idx < 0: none.
template <typename T>
void embedding_scatter_add(T* grad_weight, const T* grad_y, const int64_t* indices, int64_t n,
                           int64_t num_embeddings, int64_t dim, int64_t padding_idx, int threads);
}  // namespace ref

}  // namespace nnx::kernels
