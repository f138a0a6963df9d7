// LSTM and Elman RNN layers over whole sequences, and the embedding lookup.
//
// Forward, step by step: the input projection W_ih x_t + b_ih + b_hh (a product with W_ih, or,
// for an embedding's output, columns gathered from a projection of the table rows computed up
// front), plus the recurrent product W_hh h_{t-1}, then the step kernel (gates, cell and hidden
// update). Backward, from step T down to 1: dh_t = grad_y_t + W_hh^T dz_{t+1}, the step kernel
// gives dz_t, and grad_x_t = W_ih^T dz_t; after the loop the weight gradients are
// whole-sequence GEMMs over all T B positions.
//
// Everything inside is feature-major (kernels/rnn/rnn.h): a step's pre-activations are a dense
// (G H, B) block, its states (H, B) blocks, so that the products have the G H gate rows as their
// M dimension (full register tiles) and the batch as N, and every operand a step touches is
// contiguous. The saved buffer holds per step the activated gates and the cell (LSTM) or hidden
// (RNN) state, and the hidden states again batch-major ((T + 1) B, H), which is both the output
// y and, shifted by one step, the B operand of the recurrent weight's gradient.
//
// For float with SIMD kernels, the weights are packed once per call into the GEMM micro-kernel's
// row panels, and each step is one pass over unit panels: a thread computes the rows of its
// panels with the micro-kernel and applies the step kernel while they are in cache, with one
// barrier per step. Double and NNX_ISA=ref run the same steps with one reference GEMM per gate
// over all units. Either way each element is computed by the same operations whatever the
// thread count.
#include "nnx/rnn.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "internal.h"
#include "nnx/runtime.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnx {
namespace {

using kernels::LstmStep;
using kernels::RnnStep;

// ---- shapes and checks ------------------------------------------------------------------------

// Sizes of one layer call. cols = T B positions; the (G H, T B) matrices of input projections and
// pre-activation gradients are stored with leading dimension ld; a step's blocks hold G H B (gates)
// or H B (states) values.
struct Dims {
  int64_t steps, batch, input, hidden, gates, cols, ld;
  int64_t gate_rows() const { return gates * hidden; }
  int64_t state_block() const { return hidden * batch; }
  int64_t gate_block() const { return gates * hidden * batch; }
};

[[noreturn]] void fail(const char* who, const std::string& what) {
  throw std::invalid_argument(std::string(who) + ": " + what);
}

// A leading dimension of at least n elements: whole cache lines, and never a multiple of 1 KiB,
// so that the rows of a column block do not all fall into the same few cache sets.
int64_t padded_ld(int64_t n) {
  const int64_t ld = (n + 15) / 16 * 16;
  return ld % 256 == 0 ? ld + 16 : ld;
}

Dims dims_of(const RnnShape& s, int64_t gates, const char* who) {
  if (s.steps < 1 || s.batch < 0 || s.input < 1 || s.hidden < 1)
    fail(who, "need steps >= 1, batch >= 0, input >= 1 and hidden >= 1, got (T, B, I, H) = (" +
                  std::to_string(s.steps) + ", " + std::to_string(s.batch) + ", " +
                  std::to_string(s.input) + ", " + std::to_string(s.hidden) + ")");
  // The largest buffers: gates (G H, T B) (with a padded row length), states (H, (T + 1) B),
  // weights (G H, max(I, H)).
  const __int128 gh = __int128(gates) * s.hidden, tb = __int128(s.steps + 1) * s.batch;
  const __int128 limit = __int128(1) << 60;
  if (gh * (tb + 256) > limit || gh * std::max(s.input, s.hidden) > limit || tb * s.input > limit)
    fail(who, "the layer's sizes overflow (T, B, I, H) = (" + std::to_string(s.steps) + ", " +
                  std::to_string(s.batch) + ", " + std::to_string(s.input) + ", " +
                  std::to_string(s.hidden) + ")");
  return {s.steps, s.batch, s.input, s.hidden, gates, s.steps * s.batch,
          padded_ld(s.steps * s.batch)};
}

void require(bool ok, const char* who, const char* what) {
  if (!ok) fail(who, std::string(what) + " is null");
}

// Embedding input: vocab >= 1 and every id in [0, vocab) (std::out_of_range naming the first bad
// one), since the ids index the projection's columns.
void check_ids(const int64_t* ids, int64_t n, int64_t vocab, const char* who) {
  if (vocab < 1 || vocab > (int64_t(1) << 31) - 1)
    fail(who, "vocab must be in [1, 2^31), got " + std::to_string(vocab));
  for (int64_t p = 0; p < n; ++p)
    if (ids[p] < 0 || ids[p] >= vocab)
      throw std::out_of_range(std::string(who) + ": id " + std::to_string(ids[p]) +
                              " at position " + std::to_string(p) + " is out of range for " +
                              std::to_string(vocab) + " embeddings");
}

// ---- building blocks ----------------------------------------------------------------------------

// C = op(A) op(B) + beta C (+ a bias per row of C, or per column) with checked arguments: float
// through the kernels of the active ISA, double through the reference.
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias,
          int threads, BiasMode bias_mode = BiasMode::row, bool a_in_place = false) {
  kernels::SgemmProblem p{ta,   tb,  m,    n,   k, 1.0f, a, lda, b, ldb, beta,
                          c,    ldc, bias, bias ? bias_mode : BiasMode::none, false};
  p.a_in_place = a_in_place;
  runtime::sgemm_checked(p, threads);
}
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc, const double* bias,
          int threads, BiasMode bias_mode = BiasMode::row, bool = false) {
  if (m == 0 || n == 0) return;
  const BiasMode mode = bias ? bias_mode : BiasMode::none;
  if (k == 0) return kernels::gemm_scale_c(m, n, beta, c, ldc, bias, mode, false);
  kernels::gemm_ref<double>(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc, bias, mode,
                            false, threads);
}

// dst (cols x rows) = src (rows x cols)^T, or zeros when src is null: by register transposes for
// float, else in 16 x 16 tiles, so that both sides move in runs of at least 16 elements.
template <typename T>
void transpose(T* dst, int64_t ld_dst, const T* src, int64_t ld_src, int64_t rows, int64_t cols) {
  if constexpr (std::is_same_v<T, float>)
    if (auto* simd = runtime::float_kernels<T>(&runtime::KernelTable::rnn); simd && src)
      return simd->transpose(dst, ld_dst, src, ld_src, rows, cols);
  constexpr int64_t kTile = 16;
  for (int64_t j0 = 0; j0 < cols; j0 += kTile)
    for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
      const int64_t i1 = std::min(rows, i0 + kTile), j1 = std::min(cols, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * ld_dst + i] = src ? src[i * ld_src + j] : T(0);
    }
}

// The step kernels of the active ISA for float, the references for double and NNX_ISA=ref.
template <typename T>
struct StepKernels {
  const kernels::RnnKernels* simd = runtime::float_kernels<T>(&runtime::KernelTable::rnn);

  void lstm_forward(const LstmStep<T>& s) const {
    run(&kernels::RnnKernels::lstm_step_forward, kernels::ref::lstm_step_forward<T>, s);
  }
  void lstm_backward(const LstmStep<T>& s) const {
    run(&kernels::RnnKernels::lstm_step_backward, kernels::ref::lstm_step_backward<T>, s);
  }
  void rnn_forward(const RnnStep<T>& s) const {
    run(&kernels::RnnKernels::rnn_step_forward, kernels::ref::rnn_step_forward<T>, s);
  }
  void rnn_backward(const RnnStep<T>& s) const {
    run(&kernels::RnnKernels::rnn_step_backward, kernels::ref::rnn_step_backward<T>, s);
  }
  void gather_transposed(T* out, int64_t ld_out, const T* table, int64_t ld_table,
                         const int32_t* ids, int64_t rows, int64_t n) const {
    run(&kernels::RnnKernels::gather_transposed, kernels::ref::gather_transposed<T>, out, ld_out,
        table, ld_table, ids, rows, n);
  }
  void scatter_add_transposed(T* table, int64_t ld_table, const T* in, int64_t ld_in,
                              const int32_t* ids, int64_t rows, int64_t n) const {
    run(&kernels::RnnKernels::scatter_add_transposed, kernels::ref::scatter_add_transposed<T>,
        table, ld_table, in, ld_in, ids, rows, n);
  }

 private:
  // The table's kernel for float when there is one, else the reference.
  template <class Simd, class Ref, class... Args>
  void run(Simd kernels::RnnKernels::*simd_kernel, Ref ref, const Args&... args) const {
    if constexpr (std::is_same_v<T, float>)
      if (simd) return (simd->*simd_kernel)(args...);
    ref(args...);
  }
};

// One thread's part of a team: index in [0, count).
struct Share {
  int index, count;
};

// A weight of one call as the T products it takes part in, one per step: op(W) is W split into
// `groups` blocks of H rows (forward: z_q = W_ih,q x_t + b_q, z_q += W_hh,q h_{t-1}), or W^T
// (backward: dh += W_hh^T dz, one group of H rows, K = G H). multiply() computes the rows of a
// range of units in every group, so that a step can apply its kernel to them right away.
//
// Float with a SIMD GEMM packs op(W) once into the micro-kernel's row panels (what the blocked
// driver would repack at every step); a range of units is then a range of panels, computed tile
// by tile. K is cut into blocks whose slice of the B operand (kc x nr floats) stays in L1 while
// every panel of the range passes over it. Otherwise the range is all H units and multiply() is
// one plain GEMM per group.
template <typename T>
class StepWeight {
 public:
  // W is (groups H, k) row-major; transposed: W is (k, H) and op(W) = W^T (one group).
  StepWeight(const T* w, int64_t groups, int64_t hidden, int64_t k, bool transposed,
             runtime::Slot slot, int threads)
      : w_(w), h_(hidden), groups_(groups), k_(k), transposed_(transposed), threads_(threads) {
    if constexpr (std::is_same_v<T, float>) {
      cfg_ = runtime::kernel_table().sgemm;
      if (cfg_) pack(slot);
    }
  }

  // Units per panel (the last one may be shorter), and the number of panels.
  int64_t panel_units() const { return cfg_ ? cfg_->mr : h_; }
  int64_t panels() const { return cfg_ ? panels_ : 1; }
  // The rows (first, count) of the panels that a share of a team computes: whole panels, split
  // as evenly as they go.
  std::pair<int64_t, int64_t> rows_of(Share share) const {
    const int64_t p = panels(), pu = panel_units();
    const int64_t r0 = std::min(h_, p * share.index / share.count * pu);
    const int64_t r1 = std::min(h_, p * (share.index + 1) / share.count * pu);
    return {r0, r1 - r0};
  }
  // Threads for the steps, which split the panels between them; the products inside run on one.
  int step_threads(int64_t batch) const {
    if (!cfg_) return 1;
    const double flops = 2.0 * double(groups_ * h_) * double(k_) * double(batch);
    return int(std::max<int64_t>(1, std::min<int64_t>({threads_, panels_, int64_t(flops / 1e6)})));
  }

  // Rows [u0, u0 + units) of every group q (u0 a multiple of panel_units()):
  // c_q = beta c_q + op(W)_q[rows] b (+ bias_q[rows]), with c_q = c + q * group_stride +
  // (row - u0) * ldc, b (K x n) of row stride ldb, and bias (groups H) or null.
  void multiply(int64_t u0, int64_t units, const T* b, int64_t ldb, int64_t n, T beta, T* c,
                int64_t ldc, int64_t group_stride, const T* bias = nullptr) const {
    if (!cfg_) {
      for (int64_t q = 0; q < groups_; ++q) {
        const T* a = transposed_ ? w_ + u0 : w_ + (q * h_ + u0) * k_;
        gemm(transposed_ ? Trans::T : Trans::N, Trans::N, units, n, k_, a,
             transposed_ ? h_ : k_, b, ldb, beta, c + q * group_stride, ldc,
             bias ? bias + q * h_ + u0 : nullptr, threads_);
      }
      return;
    }
    if constexpr (std::is_same_v<T, float>) {
      const int64_t mr = cfg_->mr, nr = cfg_->nr;
      kernels::SgemmTile t{};
      t.a_rs = 1;
      t.a_cs = mr;
      t.ldb = ldb;
      t.ldc = ldc;
      t.alpha = 1.0f;
      for (int64_t pc = 0; pc < k_; pc += kc_) {
        t.k = std::min(kc_, k_ - pc);
        t.beta = pc == 0 ? beta : 1.0f;
        const bool last = pc + t.k >= k_;
        for (int64_t j = 0; j < n; j += nr) {
          t.n = int(std::min(nr, n - j));
          t.b = b + pc * ldb + j;
          for (int64_t q = 0; q < groups_; ++q)
            for (int64_t r = 0; r < units; r += mr) {
              t.m = int(std::min(mr, units - r));
              t.a = packed_ + q * group_floats_ + pc * panels_ * mr + (u0 + r) * t.k;
              t.c = c + q * group_stride + r * ldc + j;
              t.bias_row = last && bias ? bias + q * h_ + u0 + r : nullptr;
              cfg_->ukernel(t);
            }
        }
      }
    }
  }

 private:
  void pack(runtime::Slot slot) {
    const int64_t mr = cfg_->mr;
    panels_ = (h_ + mr - 1) / mr;
    // Equal K blocks of at most 32 KiB of B slice (kc x nr floats).
    const int64_t kc_max = std::max<int64_t>(64, 8192 / cfg_->nr);
    kc_ = (k_ + kc_max - 1) / kc_max;
    kc_ = (k_ + kc_ - 1) / kc_;
    group_floats_ = panels_ * mr * k_;
    packed_ = runtime::workspace_of<float>(slot, size_t(groups_ * group_floats_));
    // op(W)(i, p) is at w[i * rs + p * cs]: group q's rows of W, or the columns of W.
    const int64_t rs = transposed_ ? 1 : k_, cs = transposed_ ? h_ : 1;
    const int64_t k_blocks = (k_ + kc_ - 1) / kc_, pieces = groups_ * k_blocks;
    const float* w = reinterpret_cast<const float*>(w_);
    (void)pieces;
#pragma omp parallel for schedule(static) num_threads(threads_) if (threads_ > 1 && pieces > 1)
    for (int64_t i = 0; i < pieces; ++i) {  // independent (group, K block) pieces
      const int64_t q = i / k_blocks, pc = i % k_blocks * kc_;
      cfg_->pack_a(packed_ + q * group_floats_ + pc * panels_ * mr, w + q * h_ * k_ + pc * cs, rs,
                   cs, h_, std::min(kc_, k_ - pc));
    }
  }

  const T* w_;
  int64_t h_, groups_, k_;
  bool transposed_;
  int threads_;
  const kernels::SgemmConfig* cfg_ = nullptr;
  int64_t panels_ = 0, kc_ = 0, group_floats_ = 0;
  float* packed_ = nullptr;
};

// The recurrent weight W_hh (G H, H) of a forward pass, or its transpose for a backward pass.
template <typename T>
StepWeight<T> recurrent_weight(const T* w_hh, const Dims& d, bool transposed, int threads) {
  return transposed ? StepWeight<T>(w_hh, 1, d.hidden, d.gate_rows(), true, runtime::Slot::pad,
                                    threads)
                    : StepWeight<T>(w_hh, d.gates, d.hidden, d.hidden, false,
                                    runtime::Slot::pad, threads);
}

// Calls step(t, u0, units, share) for every step t in order (reverse: from the last) over all
// hidden units: with several threads, each takes a fixed range of whole panels of w (its share of
// the team, which it may use to split other work too), and a barrier separates the steps (each
// reads all of the previous one's states).
template <typename T, class Step>
void run_steps(const StepWeight<T>& w, const Dims& d, bool reverse, Step step) {
  const auto time = [&](int64_t i) { return reverse ? d.steps - 1 - i : i; };
  const int threads = w.step_threads(d.batch);
  if (threads <= 1) {
    for (int64_t i = 0; i < d.steps; ++i) step(time(i), 0, d.hidden, Share{0, 1});
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    Share share{0, threads};
#ifdef _OPENMP
    share.index = omp_get_thread_num();
#endif
    const auto [u0, units] = w.rows_of(share);
    for (int64_t i = 0; i < d.steps; ++i) {
      if (units > 0) step(time(i), u0, units, share);
#pragma omp barrier
    }
  }
}

// Two dense (rows, B) buffers for the B operand of the next step's product when it is not kept
// anyway (the LSTM's h_t in forward): the step kernel writes into buffer t % 2 while other
// threads may still read the other one. Buffer i holds the value of time index i.
template <typename T>
class StepOperand {
 public:
  StepOperand(int64_t rows, int64_t batch)
      : size_(rows * batch),
        data_(runtime::workspace_of<T>(runtime::Slot::operand, size_t(2 * rows * batch))) {}
  T* at(int64_t i) const { return data_ + (i % 2) * size_; }

 private:
  int64_t size_;
  T* data_;
};

// What a layer reads: a dense x (T, B, I), or the rows of an embedding table (V, I) at ids (T, B).
template <typename T>
struct LayerInput {
  const T* x = nullptr;
  const int64_t* ids = nullptr;
  const T* table = nullptr;
  int64_t vocab = 0;
};

// The input part of every step's pre-activations, W_ih x_t + b_ih + b_hh. For a dense input it is
// one more product per step, W_ih packed like W_hh and x_t^T as its B operand (x transposed into
// (I, B) blocks up front), so that it lands in the step's block while that is in cache. For an
// embedding, one GEMM over the V table rows up front gives a (V, G H) matrix whose rows each step
// gathers by id.
template <typename T>
class InputProjection {
 public:
  InputProjection(const Dims& d, const LayerInput<T>& in, const T* w_ih, const T* b_ih,
                  const T* b_hh, int threads)
      : d_(d), embedded_(in.ids != nullptr) {
    const int64_t rows = d.gate_rows();
    if (b_ih || b_hh) {
      bias_ = runtime::workspace_of<T>(runtime::Slot::shared, size_t(rows));
      for (int64_t r = 0; r < rows; ++r)
        bias_[r] = (b_ih ? b_ih[r] : T(0)) + (b_hh ? b_hh[r] : T(0));
    }
    if (embedded_) {
      table_ = runtime::workspace_of<T>(runtime::Slot::col, size_t(in.vocab * rows));
      gemm(Trans::N, Trans::T, in.vocab, rows, d.input, in.table, d.input, w_ih, d.input, T(0),
           table_, rows, bias_, threads, BiasMode::col);
      ids_ = runtime::workspace_of<int32_t>(runtime::Slot::chunk, size_t(d.cols));
      for (int64_t p = 0; p < d.cols; ++p) ids_[p] = int32_t(in.ids[p]);
    } else {
      x_t_ = runtime::workspace_of<T>(runtime::Slot::col, size_t(d.cols * d.input));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && d.steps > 1)
      for (int64_t t = 0; t < d.steps; ++t)
        transpose(x_t_ + t * d.input * d.batch, d.batch, in.x + t * d.batch * d.input, d.input,
                  d.batch, d.input);
      w_ih_.emplace(w_ih, d.gates, d.hidden, d.input, false, runtime::Slot::weights, threads);
    }
  }

  // Rows [u0, u0 + units) of every gate of step t's block (gate q's row j at z + q H B + j B).
  void fill(int64_t t, int64_t u0, int64_t units, T* z, const StepKernels<T>& kernels) const {
    const int64_t b = d_.batch;
    if (!embedded_)
      return w_ih_->multiply(u0, units, x_t_ + t * d_.input * b, b, b, T(0), z, b,
                             d_.state_block(), bias_);
    for (int64_t q = 0; q < d_.gates; ++q)
      kernels.gather_transposed(z + q * d_.state_block(), b, table_ + q * d_.hidden + u0,
                                d_.gate_rows(), ids_ + t * b, units, b);
  }

 private:
  Dims d_;
  bool embedded_;
  T* bias_ = nullptr;
  T* table_ = nullptr;  // embedding: E W_ih^T + b, (V, G H): row v is the projection of row v
  int32_t* ids_ = nullptr;
  T* x_t_ = nullptr;  // dense: x_t^T blocks (I, B)
  std::optional<StepWeight<T>> w_ih_;
};

// The pieces of `saved`. LSTM: activated gates (T blocks of (4H, B)), cell states (T + 1 blocks
// of (H, B), block 0 = c0), hidden states batch-major ((T + 1) B, H), rows [0, B) = h0.
// RNN: hidden states (T + 1 blocks of (H, B)), and batch-major as for the LSTM.
template <typename T>
struct Saved {
  T *gates = nullptr, *cells = nullptr, *hidden = nullptr, *hidden_rows = nullptr;
  Saved(T* base, const Dims& d) {
    const int64_t states = (d.steps + 1) * d.state_block();
    if (d.gates == 4) {
      gates = base;
      cells = gates + d.steps * d.gate_block();
      hidden_rows = cells + states;
    } else {
      hidden = base;
      hidden_rows = hidden + states;
    }
  }
};

size_t saved_size(const Dims& d) {
  const int64_t states = (d.steps + 1) * d.state_block();
  return size_t(d.gates == 4 ? d.steps * d.gate_block() + 2 * states : 2 * states);
}

// Rows [u0, u0 + units) of a step's hidden state h (H, B) into the batch-major copy's rows for
// time index i: columns [u0, u0 + units) of rows [i B, i B + B).
template <typename T>
void store_batch_major(const Dims& d, T* hidden_rows, int64_t i, int64_t u0, int64_t units,
                       const T* h) {
  transpose(hidden_rows + i * d.batch * d.hidden + u0, d.hidden, h, d.batch, units, d.batch);
}

// y (T B, H) and h_n from the batch-major hidden states.
template <typename T>
void write_outputs(const Dims& d, const T* hidden_rows, T* y, T* h_n) {
  const T* first = hidden_rows + d.batch * d.hidden;
  std::copy(first, first + d.cols * d.hidden, y);
  if (h_n) std::copy(y + (d.steps - 1) * d.batch * d.hidden, y + d.cols * d.hidden, h_n);
}

// The gradient reaching each step's hidden state from y, as T blocks (H, B), with grad_hn
// added to the last one.
template <typename T>
T* hidden_gradients(const Dims& d, const T* grad_y, const T* grad_hn, int threads) {
  T* dh = runtime::workspace_of<T>(runtime::Slot::chunk, size_t(d.steps * d.state_block()));
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && d.steps > 1)
  for (int64_t t = 0; t < d.steps; ++t)
    transpose(dh + t * d.state_block(), d.batch, grad_y + t * d.batch * d.hidden, d.hidden,
              d.batch, d.hidden);
  if (grad_hn) {
    T* last = dh + (d.steps - 1) * d.state_block();
    for (int64_t j = 0; j < d.hidden; ++j)
      for (int64_t b = 0; b < d.batch; ++b) last[j * d.batch + b] += grad_hn[b * d.hidden + j];
  }
  return dh;
}

// grad_b of a dense-input layer, summed while the steps run: each step adds its columns of dz_all
// into a (G H, B) accumulator while they are in cache (a pass over dz_all after the loop reads it
// from memory again), a thread only its own units' rows, in step order; each row of that is
// summed after the loop, in a fixed order.
template <typename T>
class BiasGradient {
 public:
  explicit BiasGradient(const Dims& d) : d_(d), acc_(size_t(d.gate_block()), T(0)) {}

  // Rows [u0, u0 + units) of every gate of step t's columns of dz_all.
  void step(int64_t t, int64_t u0, int64_t units, const T* dz_all) {
    for (int64_t q = 0; q < d_.gates; ++q)
      for (int64_t j = u0; j < u0 + units; ++j) {
        const int64_t r = q * d_.hidden + j;
        T* acc = acc_.data() + r * d_.batch;
        const T* add = dz_all + r * d_.ld + t * d_.batch;
        for (int64_t b = 0; b < d_.batch; ++b) acc[b] += add[b];
      }
  }

  void finish(T* grad_b) const {
    for (int64_t r = 0; r < d_.gate_rows(); ++r) {
      T sum = 0;
      for (int64_t b = 0; b < d_.batch; ++b) sum += acc_[size_t(r * d_.batch + b)];
      grad_b[r] = sum;
    }
  }

 private:
  Dims d_;
  std::vector<T> acc_;
};

// grad_x of a dense input, one step at a time: grad_x_t^T = W_ih^T dz_t (I, B), with W_ih^T
// packed once and dz_t the dense block the recurrent product reads anyway (as one GEMM over all
// T B positions after the loop, its (T B, I) output with a small I ran at half speed). Each
// thread computes its share of the I rows; step t's is done during step t - 1, once dz_t is
// complete, and step 1's after the loop.
template <typename T>
class InputGradient {
 public:
  InputGradient(const Dims& d, const T* w_ih, T* grad_x, int threads)
      : d_(d), grad_x_(grad_x),
        w_(w_ih, 1, d.input, d.gate_rows(), true, runtime::Slot::weights, threads),
        block_(runtime::workspace_of<T>(runtime::Slot::col, size_t(d.input * d.batch))) {}

  // dz_t: step t's columns of dz_all (row stride ld).
  void step(int64_t t, const T* dz_t, int64_t ld, Share share) const {
    const auto [r0, rows] = w_.rows_of(share);
    if (rows <= 0) return;
    w_.multiply(r0, rows, dz_t, ld, d_.batch, T(0), block_ + r0 * d_.batch, d_.batch, 0);
    transpose(grad_x_ + t * d_.batch * d_.input + r0, d_.input, block_ + r0 * d_.batch, d_.batch,
              rows, d_.batch);
  }

 private:
  Dims d_;
  T* grad_x_;
  StepWeight<T> w_;
  T* block_;
};

// Step t of a backward loop, units [u0, u0 + units): their dh_t (holding what y and h_n send)
// gains step t + 1's recurrent product W_hh^T dz_{t+1}, and the input gradient's share of step
// t + 1 rides along, dz_{t+1} being complete by now. Returns dh_t of those units.
template <typename T>
T* recurrent_gradient(const StepWeight<T>& w, const Dims& d, T* dh, const T* dz_all, int64_t t,
                      int64_t u0, int64_t units, const std::optional<InputGradient<T>>& grad_x,
                      Share share) {
  T* dh_t = dh + t * d.state_block() + u0 * d.batch;
  if (t + 1 < d.steps) {
    const T* dz_next = dz_all + (t + 1) * d.batch;
    w.multiply(u0, units, dz_next, d.ld, d.batch, T(1), dh_t, d.batch, 0);
    if (grad_x) grad_x->step(t + 1, dz_next, d.ld, share);
  }
  return dh_t;
}

// The gradients through an embedding's projection table P = E W_ih^T + b (V, G H): each step
// adds its dz columns into the rows of P their ids select (dp, kept (V, G H) so that a step adds
// runs of units); after the loop grad_w_ih = dp^T E, grad_table = dp W_ih and grad_b = the column
// sums of dp. Each thread adds only its own units' columns, in step and position order, so dp
// does not depend on the thread count.
template <typename T>
class ProjectionGradient {
 public:
  ProjectionGradient(const Dims& d, const LayerInput<T>& in)
      : d_(d), in_(in), ids_(in.ids, in.ids + d.cols),
        dp_(runtime::workspace_of<T>(runtime::Slot::weights, size_t(in.vocab * d.gate_rows()))) {
    std::fill(dp_, dp_ + in.vocab * d.gate_rows(), T(0));
  }

  // Rows [u0, u0 + units) of every gate of step t's columns of dz_all.
  void step(int64_t t, int64_t u0, int64_t units, const T* dz_all,
            const StepKernels<T>& kernels) const {
    for (int64_t q = 0; q < d_.gates; ++q)
      kernels.scatter_add_transposed(dp_ + q * d_.hidden + u0, d_.gate_rows(),
                                     dz_all + (q * d_.hidden + u0) * d_.ld + t * d_.batch, d_.ld,
                                     ids_.data() + t * d_.batch, units, d_.batch);
  }

  void finish(const T* w_ih, T* grad_table, T* grad_w_ih, T* grad_b, int threads) const {
    const int64_t rows = d_.gate_rows(), v = in_.vocab;
    if (grad_w_ih)
      gemm(Trans::T, Trans::N, rows, d_.input, v, dp_, rows, in_.table, d_.input, T(0),
           grad_w_ih, d_.input, nullptr, threads);
    if (grad_table)
      gemm(Trans::N, Trans::N, v, d_.input, rows, dp_, rows, w_ih, d_.input, T(0), grad_table,
           d_.input, nullptr, threads);
    if (grad_b) {
      std::fill(grad_b, grad_b + rows, T(0));
      for (int64_t i = 0; i < v; ++i)
        for (int64_t r = 0; r < rows; ++r) grad_b[r] += dp_[i * rows + r];
    }
  }

 private:
  Dims d_;
  LayerInput<T> in_;
  std::vector<int32_t> ids_;
  T* dp_;
};

// After the backward steps: grad_w_hh as one GEMM over all T B columns of dz_all (G H, T B), and
// grad_h0 = (W_hh^T dz_1)^T from step 1's columns; for a dense input also grad_w_ih over dz_all.
template <typename T>
void finish_backward(const Dims& d, const T* dz_all, const LayerInput<T>& in,
                     const T* hidden_rows, const StepWeight<T>& w_hh_t, T* grad_w_ih,
                     T* grad_w_hh, T* grad_h0, int threads) {
  const int64_t rows = d.gate_rows();
  // The hidden states entering steps 1..T: rows [0, T B) of the batch-major copy.
  // dz_all is read in place: it comes from memory once either way, and its padded row stride
  // keeps a tile's rows in distinct cache sets.
  if (grad_w_hh)
    gemm(Trans::N, Trans::N, rows, d.hidden, d.cols, dz_all, d.ld, hidden_rows, d.hidden, T(0),
         grad_w_hh, d.hidden, nullptr, threads, BiasMode::none, true);
  if (!in.ids) {
    if (grad_w_ih)
      gemm(Trans::N, Trans::N, rows, d.input, d.cols, dz_all, d.ld, in.x, d.input, T(0),
           grad_w_ih, d.input, nullptr, threads, BiasMode::none, true);
  }
  if (grad_h0) {
    T* dh0 = runtime::workspace_of<T>(runtime::Slot::col, size_t(d.state_block()));
    w_hh_t.multiply(0, d.hidden, dz_all, d.ld, d.batch, T(0), dh0, d.batch, 0);
    transpose(grad_h0, d.hidden, dh0, d.batch, d.hidden, d.batch);
  }
}

// Gradients of a call with an empty batch: the weights' are zero, the others empty.
template <typename T>
void zero_weight_gradients(const Dims& d, T* grad_w_ih, T* grad_w_hh, T* grad_b) {
  if (grad_w_ih) std::fill(grad_w_ih, grad_w_ih + d.gate_rows() * d.input, T(0));
  if (grad_w_hh) std::fill(grad_w_hh, grad_w_hh + d.gate_rows() * d.hidden, T(0));
  if (grad_b) std::fill(grad_b, grad_b + d.gate_rows(), T(0));
}

// ---- the layers -----------------------------------------------------------------------------------

template <typename T>
void lstm_forward_impl(const Dims& d, const LayerInput<T>& in, const T* w_ih, const T* w_hh,
                       const T* b_ih, const T* b_hh, const T* h0, const T* c0, T* y, T* h_n,
                       T* c_n, T* saved) {
  const int threads = get_num_threads();
  if (!saved) saved = runtime::workspace_of<T>(runtime::Slot::col_grad, saved_size(d));
  const Saved<T> s(saved, d);
  const StepKernels<T> kernels;
  const InputProjection<T> projection(d, in, w_ih, b_ih, b_hh, threads);
  StepOperand<T> h(d.hidden, d.batch);  // h_t, the B operand of step t + 1
  transpose(h.at(0), d.batch, h0, d.hidden, d.batch, d.hidden);
  transpose(s.cells, d.batch, c0, d.hidden, d.batch, d.hidden);
  store_batch_major(d, s.hidden_rows, 0, 0, d.hidden, h.at(0));

  const StepWeight<T> w = recurrent_weight(w_hh, d, false, threads);
  run_steps(w, d, false, [&](int64_t t, int64_t u0, int64_t units, Share) {
    T* z = s.gates + t * d.gate_block() + u0 * d.batch;
    projection.fill(t, u0, units, z, kernels);
    w.multiply(u0, units, h.at(t), d.batch, d.batch, T(1), z, d.batch, d.state_block());
    LstmStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.gates = z;
    step.gates_ld = d.batch;
    step.gate_stride = d.state_block();
    step.c_prev = s.cells + t * d.state_block() + u0 * d.batch;
    step.c = s.cells + (t + 1) * d.state_block() + u0 * d.batch;
    step.h = h.at(t + 1) + u0 * d.batch;
    step.state_ld = d.batch;
    kernels.lstm_forward(step);
    store_batch_major(d, s.hidden_rows, t + 1, u0, units, step.h);
  });
  write_outputs(d, s.hidden_rows, y, h_n);
  if (c_n) transpose(c_n, d.hidden, s.cells + d.steps * d.state_block(), d.batch, d.hidden, d.batch);
}

template <typename T>
void lstm_backward_impl(const Dims& d, const T* grad_y, const T* grad_hn, const T* grad_cn,
                        const LayerInput<T>& in, const T* w_ih, const T* w_hh, const T* saved,
                        T* grad_input, T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0,
                        T* grad_c0) {
  const int threads = get_num_threads();
  const Saved<T> s(const_cast<T*>(saved), d);  // read only
  T* dh = hidden_gradients(d, grad_y, grad_hn, threads);
  T* dz_all = runtime::workspace_of<T>(runtime::Slot::col_grad, size_t(d.gate_rows() * d.ld));
  T* dc = runtime::workspace_of<T>(runtime::Slot::shared, size_t(d.state_block()));
  transpose(dc, d.batch, grad_cn, d.hidden, d.batch, d.hidden);

  const StepWeight<T> w = recurrent_weight(w_hh, d, true, threads);
  const StepKernels<T> kernels;
  std::optional<InputGradient<T>> grad_x;  // dense input
  if (!in.ids && grad_input) grad_x.emplace(d, w_ih, grad_input, threads);
  std::optional<ProjectionGradient<T>> projection;  // embedding input
  if (in.ids && (grad_input || grad_w_ih || grad_b)) projection.emplace(d, in);
  std::optional<BiasGradient<T>> bias;  // dense input (an embedding's comes from dp)
  if (!in.ids && grad_b) bias.emplace(d);
  // The step kernel writes dz_t straight into its columns of dz_all, where step t - 1's product
  // reads it as the B operand (the padded row stride keeps its rows apart in the cache).
  run_steps(w, d, true, [&](int64_t t, int64_t u0, int64_t units, Share share) {
    T* dh_t = recurrent_gradient(w, d, dh, dz_all, t, u0, units, grad_x, share);
    LstmStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.gates = s.gates + t * d.gate_block() + u0 * d.batch;
    step.gates_ld = d.batch;
    step.gate_stride = d.state_block();
    step.c_prev = s.cells + t * d.state_block() + u0 * d.batch;
    step.c = s.cells + (t + 1) * d.state_block() + u0 * d.batch;
    step.state_ld = d.batch;
    step.dh = dh_t;
    step.dh_ld = d.batch;
    step.dc = dc + u0 * d.batch;
    step.dc_ld = d.batch;
    step.dz = dz_all + u0 * d.ld + t * d.batch;
    step.dz_ld = d.ld;
    step.dz_gate_stride = d.hidden * d.ld;
    kernels.lstm_backward(step);
    if (projection) projection->step(t, u0, units, dz_all, kernels);
    if (bias) bias->step(t, u0, units, dz_all);
  });
  if (grad_x) grad_x->step(0, dz_all, d.ld, Share{0, 1});
  if (projection) projection->finish(w_ih, grad_input, grad_w_ih, grad_b, threads);
  if (bias) bias->finish(grad_b);
  finish_backward(d, dz_all, in, s.hidden_rows, w, grad_w_ih, grad_w_hh, grad_h0, threads);
  if (grad_c0) transpose(grad_c0, d.hidden, dc, d.batch, d.hidden, d.batch);
}

}  // namespace

size_t lstm_saved_size(const RnnShape& shape) { return saved_size(dims_of(shape, 4, "lstm")); }
size_t rnn_saved_size(const RnnShape& shape) { return saved_size(dims_of(shape, 1, "rnn")); }

template <typename T>
void lstm_forward(const RnnShape& shape, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                  const T* b_hh, const T* h0, const T* c0, T* y, T* h_n, T* c_n, T* saved) {
  const char* who = "lstm_forward";
  const Dims d = dims_of(shape, 4, who);
  if (d.batch == 0) {  // nothing to compute; the saved buffer still gets defined contents
    if (saved) std::fill(saved, saved + saved_size(d), T(0));
    return;
  }
  require(x && w_ih && w_hh && y, who, "x, w_ih, w_hh or y");
  LayerInput<T> in;
  in.x = x;
  lstm_forward_impl(d, in, w_ih, w_hh, b_ih, b_hh, h0, c0, y, h_n, c_n, saved);
}

template <typename T>
void lstm_forward_embedded(const RnnShape& shape, const int64_t* ids, const T* table,
                           int64_t vocab, const T* w_ih, const T* w_hh, const T* b_ih,
                           const T* b_hh, const T* h0, const T* c0, T* y, T* h_n, T* c_n,
                           T* saved) {
  const char* who = "lstm_forward_embedded";
  const Dims d = dims_of(shape, 4, who);
  require(ids || d.batch == 0, who, "ids");
  check_ids(ids, d.cols, vocab, who);
  if (d.batch == 0) {
    if (saved) std::fill(saved, saved + saved_size(d), T(0));
    return;
  }
  require(table && w_ih && w_hh && y, who, "table, w_ih, w_hh or y");
  LayerInput<T> in;
  in.ids = ids;
  in.table = table;
  in.vocab = vocab;
  lstm_forward_impl(d, in, w_ih, w_hh, b_ih, b_hh, h0, c0, y, h_n, c_n, saved);
}

template <typename T>
void lstm_backward(const RnnShape& shape, const T* grad_y, const T* grad_hn, const T* grad_cn,
                   const T* x, const T* w_ih, const T* w_hh, const T* saved, T* grad_x,
                   T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0, T* grad_c0) {
  const char* who = "lstm_backward";
  const Dims d = dims_of(shape, 4, who);
  if (d.batch == 0) return zero_weight_gradients(d, grad_w_ih, grad_w_hh, grad_b);
  require(grad_y && x && w_ih && w_hh && saved, who, "grad_y, x, w_ih, w_hh or saved");
  LayerInput<T> in;
  in.x = x;
  lstm_backward_impl(d, grad_y, grad_hn, grad_cn, in, w_ih, w_hh, saved, grad_x, grad_w_ih,
                     grad_w_hh, grad_b, grad_h0, grad_c0);
}

template <typename T>
void lstm_backward_embedded(const RnnShape& shape, const T* grad_y, const T* grad_hn,
                            const T* grad_cn, const int64_t* ids, const T* table, int64_t vocab,
                            const T* w_ih, const T* w_hh, const T* saved, T* grad_table,
                            T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0, T* grad_c0) {
  const char* who = "lstm_backward_embedded";
  const Dims d = dims_of(shape, 4, who);
  require(ids || d.batch == 0, who, "ids");
  check_ids(ids, d.cols, vocab, who);
  if (d.batch == 0) {
    if (grad_table) std::fill(grad_table, grad_table + vocab * d.input, T(0));
    return zero_weight_gradients(d, grad_w_ih, grad_w_hh, grad_b);
  }
  require(grad_y && table && w_ih && w_hh && saved, who, "grad_y, table, w_ih, w_hh or saved");
  LayerInput<T> in;
  in.ids = ids;
  in.table = table;
  in.vocab = vocab;
  lstm_backward_impl(d, grad_y, grad_hn, grad_cn, in, w_ih, w_hh, saved, grad_table, grad_w_ih,
                     grad_w_hh, grad_b, grad_h0, grad_c0);
}

template <typename T>
void rnn_forward(const RnnShape& shape, RnnNonlinearity act, const T* x, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const T* h0, T* y, T* h_n,
                 T* saved) {
  const char* who = "rnn_forward";
  const Dims d = dims_of(shape, 1, who);
  if (d.batch == 0) {
    if (saved) std::fill(saved, saved + saved_size(d), T(0));
    return;
  }
  require(x && w_ih && w_hh && y, who, "x, w_ih, w_hh or y");
  const int threads = get_num_threads();
  if (!saved) saved = runtime::workspace_of<T>(runtime::Slot::col_grad, saved_size(d));
  const Saved<T> s(saved, d);
  const StepKernels<T> kernels;
  LayerInput<T> in;
  in.x = x;
  const InputProjection<T> projection(d, in, w_ih, b_ih, b_hh, threads);
  transpose(s.hidden, d.batch, h0, d.hidden, d.batch, d.hidden);
  store_batch_major(d, s.hidden_rows, 0, 0, d.hidden, s.hidden);

  const StepWeight<T> w = recurrent_weight(w_hh, d, false, threads);
  run_steps(w, d, false, [&](int64_t t, int64_t u0, int64_t units, Share) {
    // Step t's pre-activations fill its hidden-state block, activated in place.
    T* h = s.hidden + (t + 1) * d.state_block() + u0 * d.batch;
    projection.fill(t, u0, units, h, kernels);
    w.multiply(u0, units, s.hidden + t * d.state_block(), d.batch, d.batch, T(1), h, d.batch, 0);
    RnnStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.relu = act == RnnNonlinearity::relu;
    step.h = h;
    step.h_ld = d.batch;
    kernels.rnn_forward(step);
    store_batch_major(d, s.hidden_rows, t + 1, u0, units, h);
  });
  write_outputs(d, s.hidden_rows, y, h_n);
}

template <typename T>
void rnn_backward(const RnnShape& shape, RnnNonlinearity act, const T* grad_y, const T* grad_hn,
                  const T* x, const T* w_ih, const T* w_hh, const T* saved, T* grad_x,
                  T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0) {
  const char* who = "rnn_backward";
  const Dims d = dims_of(shape, 1, who);
  if (d.batch == 0) return zero_weight_gradients(d, grad_w_ih, grad_w_hh, grad_b);
  require(grad_y && x && w_ih && w_hh && saved, who, "grad_y, x, w_ih, w_hh or saved");
  const int threads = get_num_threads();
  const Saved<T> s(const_cast<T*>(saved), d);  // read only
  T* dh = hidden_gradients(d, grad_y, grad_hn, threads);
  // The step kernel writes dz_t into its columns of dz_all: the B operand of step t - 1.
  T* dz_all = runtime::workspace_of<T>(runtime::Slot::col_grad, size_t(d.gate_rows() * d.ld));

  const StepWeight<T> w = recurrent_weight(w_hh, d, true, threads);
  const StepKernels<T> kernels;
  std::optional<InputGradient<T>> input_gradient;
  if (grad_x) input_gradient.emplace(d, w_ih, grad_x, threads);
  std::optional<BiasGradient<T>> bias;
  if (grad_b) bias.emplace(d);
  run_steps(w, d, true, [&](int64_t t, int64_t u0, int64_t units, Share share) {
    T* dh_t = recurrent_gradient(w, d, dh, dz_all, t, u0, units, input_gradient, share);
    RnnStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.relu = act == RnnNonlinearity::relu;
    step.h = s.hidden + (t + 1) * d.state_block() + u0 * d.batch;
    step.h_ld = d.batch;
    step.dh = dh_t;
    step.dh_ld = d.batch;
    step.dz = dz_all + u0 * d.ld + t * d.batch;
    step.dz_ld = d.ld;
    kernels.rnn_backward(step);
    if (bias) bias->step(t, u0, units, dz_all);
  });
  if (bias) bias->finish(grad_b);
  if (input_gradient) input_gradient->step(0, dz_all, d.ld, Share{0, 1});
  LayerInput<T> in;
  in.x = x;
  finish_backward(d, dz_all, in, s.hidden_rows, w, grad_w_ih, grad_w_hh, grad_h0, threads);
}

template <typename T>
void embedding_forward(T* y, const T* weight, const int64_t* indices, int64_t n,
                       int64_t num_embeddings, int64_t dim) {
  const char* who = "embedding_forward";
  if (n < 0 || num_embeddings < 0 || dim < 0)
    fail(who, "sizes must be >= 0, got n=" + std::to_string(n) + " num_embeddings=" +
                  std::to_string(num_embeddings) + " dim=" + std::to_string(dim));
  for (int64_t p = 0; p < n; ++p)
    if (indices[p] < 0 || indices[p] >= num_embeddings)
      throw std::out_of_range(std::string(who) + ": index " + std::to_string(indices[p]) +
                              " at position " + std::to_string(p) + " is out of range for " +
                              std::to_string(num_embeddings) + " embeddings");
  if (n == 0 || dim == 0) return;
  kernels::ref::embedding_gather(y, weight, indices, n, dim, get_num_threads());
}

template <typename T>
void embedding_backward(T* grad_weight, const T* grad_y, const int64_t* indices, int64_t n,
                        int64_t num_embeddings, int64_t dim, int64_t padding_idx) {
  const char* who = "embedding_backward";
  if (n < 0 || num_embeddings < 0 || dim < 0)
    fail(who, "sizes must be >= 0, got n=" + std::to_string(n) + " num_embeddings=" +
                  std::to_string(num_embeddings) + " dim=" + std::to_string(dim));
  if (padding_idx < -1 || padding_idx >= num_embeddings)
    fail(who, "padding_idx " + std::to_string(padding_idx) + " is not -1 (none) or in [0, " +
                  std::to_string(num_embeddings) + ")");
  for (int64_t p = 0; p < n; ++p)
    if (indices[p] < 0 || indices[p] >= num_embeddings)
      throw std::out_of_range(std::string(who) + ": index " + std::to_string(indices[p]) +
                              " at position " + std::to_string(p) + " is out of range for " +
                              std::to_string(num_embeddings) + " embeddings");
  if (num_embeddings == 0 || dim == 0) return;
  kernels::ref::embedding_scatter_add(grad_weight, grad_y, indices, n, num_embeddings, dim,
                                      padding_idx, get_num_threads());
}

#define NNX_INSTANTIATE(T)                                                                         \
  template void lstm_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*, const T*, \
                                const T*, const T*, T*, T*, T*, T*);                               \
  template void lstm_backward<T>(const RnnShape&, const T*, const T*, const T*, const T*,         \
                                 const T*, const T*, const T*, T*, T*, T*, T*, T*, T*);            \
  template void lstm_forward_embedded<T>(const RnnShape&, const int64_t*, const T*, int64_t,      \
                                         const T*, const T*, const T*, const T*, const T*,        \
                                         const T*, T*, T*, T*, T*);                                \
  template void lstm_backward_embedded<T>(const RnnShape&, const T*, const T*, const T*,          \
                                          const int64_t*, const T*, int64_t, const T*, const T*,  \
                                          const T*, T*, T*, T*, T*, T*, T*);                       \
  template void rnn_forward<T>(const RnnShape&, RnnNonlinearity, const T*, const T*, const T*,    \
                               const T*, const T*, const T*, T*, T*, T*);                          \
  template void rnn_backward<T>(const RnnShape&, RnnNonlinearity, const T*, const T*, const T*,   \
                                const T*, const T*, const T*, T*, T*, T*, T*, T*);                 \
  template void embedding_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);    \
  template void embedding_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t,    \
                                      int64_t);
NNX_INSTANTIATE(float)
NNX_INSTANTIATE(double)
#undef NNX_INSTANTIATE

}  // namespace nnx
