// LSTM and Elman RNN layers over whole sequences, and the embedding lookup.
//
// Forward: one GEMM projects the inputs of all T steps (z^T = W_ih X^T + b_ih + b_hh), then
// every step adds the recurrent product z_t^T += W_hh h_{t-1}^T and runs the step kernel (gates,
// cell and hidden update). Backward, from step T down to 1: dh_t = grad_y_t + W_hh^T dz_{t+1}
// and the step kernel gives dz_t; after the loop the weight gradients are whole-sequence GEMMs
// over all T B columns, and grad_x = dz^T W_ih is one more.
//
// Everything inside is feature-major (kernels/rnn/rnn.h): the pre-activations and their
// gradients are (G H, T B) matrices, step t in columns [t B, t B + B); hidden and cell states
// are (H, (T + 1) B), block 0 holding h0 / c0 and block t the state after step t. The recurrent
// GEMM then has the G H gate rows as its M dimension (full register tiles) and the batch as N,
// and step t reads its B operand (block t - 1 of the hidden states) in place.
//
// For float with SIMD kernels, the recurrent weight is packed once per call into the GEMM
// micro-kernel's row panels, and each step is one pass over unit panels: a thread computes the
// rows of its panels with the micro-kernel and applies the step kernel while they are in L1, with
// one barrier per step. Double and NNX_ISA=ref run the same steps with one reference GEMM per
// gate over all units. Either way each element is computed by the same operations whatever the
// thread count.
#include "nnx/rnn.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

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

// Sizes of one layer call: cols = T B columns of the (G H, T B) matrices (pre-activations and
// gradients), stored with leading dimension ld; the (H, (T + 1) B) states with state_ld.
struct Dims {
  int64_t steps, batch, input, hidden, gates, cols, ld, state_ld;
  int64_t gate_rows() const { return gates * hidden; }
};

[[noreturn]] void fail(const char* who, const std::string& what) {
  throw std::invalid_argument(std::string(who) + ": " + what);
}

// A leading dimension of at least n elements: whole cache lines, and never a multiple of 1 KiB.
// A step's recurrent product reads one column block of up to 4H rows of such a matrix; with a
// power-of-two row stride all those rows fall into the same few cache sets and evict each other
// (the backward steps ran 40% slower with ld = T B = 2048).
int64_t padded_ld(int64_t n) {
  const int64_t ld = (n + 15) / 16 * 16;
  return ld % 256 == 0 ? ld + 16 : ld;
}

Dims dims_of(const RnnShape& s, int64_t gates, const char* who) {
  if (s.steps < 1 || s.batch < 0 || s.input < 1 || s.hidden < 1)
    fail(who, "need steps >= 1, batch >= 0, input >= 1 and hidden >= 1, got (T, B, I, H) = (" +
                  std::to_string(s.steps) + ", " + std::to_string(s.batch) + ", " +
                  std::to_string(s.input) + ", " + std::to_string(s.hidden) + ")");
  // The largest buffers: gates (G H, T B), states (H, (T + 1) B), weights (G H, max(I, H)).
  const __int128 gh = __int128(gates) * s.hidden, tb = __int128(s.steps + 1) * s.batch;
  const __int128 limit = __int128(1) << 60;
  if (gh * tb > limit || gh * std::max(s.input, s.hidden) > limit || tb * s.input > limit)
    fail(who, "the layer's sizes overflow (T, B, I, H) = (" + std::to_string(s.steps) + ", " +
                  std::to_string(s.batch) + ", " + std::to_string(s.input) + ", " +
                  std::to_string(s.hidden) + ")");
  return {s.steps,          s.batch, s.input, s.hidden, gates, s.steps * s.batch,
          padded_ld(s.steps * s.batch), padded_ld((s.steps + 1) * s.batch)};
}

void require(bool ok, const char* who, const char* what) {
  if (!ok) fail(who, std::string(what) + " is null");
}

// ---- building blocks ----------------------------------------------------------------------------

// C = op(A) op(B) + beta C (+ a bias per row of C) with checked arguments: float through the
// kernels of the active ISA, double through the reference.
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias_row,
          int threads) {
  runtime::sgemm_checked({ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, bias_row,
                          bias_row ? BiasMode::row : BiasMode::none, false},
                         threads);
}
void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
          const double* bias_row, int threads) {
  if (m == 0 || n == 0) return;
  const BiasMode mode = bias_row ? BiasMode::row : BiasMode::none;
  if (k == 0) return kernels::gemm_scale_c(m, n, beta, c, ldc, bias_row, mode, false);
  kernels::gemm_ref<double>(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc, bias_row, mode,
                            false, threads);
}

// dst (cols x rows) = src (rows x cols)^T, or zeros when src is null. 16 x 16 tiles, so that
// both sides move in runs of at least 16 elements.
template <typename T>
void transpose(T* dst, int64_t ld_dst, const T* src, int64_t ld_src, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 16;
  for (int64_t j0 = 0; j0 < cols; j0 += kTile)
    for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
      const int64_t i1 = std::min(rows, i0 + kTile), j1 = std::min(cols, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * ld_dst + i] = src ? src[i * ld_src + j] : T(0);
    }
}

// out[r] = sum of row r of x (rows x cols), each row summed in a fixed order: 16 interleaved
// partial sums (which the compiler vectorises), then those in order.
template <typename T>
void row_sums(T* out, const T* x, int64_t ld, int64_t rows, int64_t cols, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && rows * cols >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * ld;
    T part[16] = {};
    int64_t p = 0;
    for (; p + 16 <= cols; p += 16)
      for (int i = 0; i < 16; ++i) part[i] += row[p + i];
    for (int i = 0; p < cols; ++p, ++i) part[i] += row[p];
    T sum = 0;
    for (T v : part) sum += v;
    out[r] = sum;
  }
}

// The step kernels of the active ISA for float, the references for double and NNX_ISA=ref.
template <typename T>
struct StepKernels {
  const kernels::RnnKernels* simd = runtime::float_kernels<T>(&runtime::KernelTable::rnn);
  void lstm_forward(const LstmStep<T>& s) const {
    if constexpr (std::is_same_v<T, float>)
      if (simd) return simd->lstm_step_forward(s);
    kernels::ref::lstm_step_forward<T>(s);
  }
  void lstm_backward(const LstmStep<T>& s) const {
    if constexpr (std::is_same_v<T, float>)
      if (simd) return simd->lstm_step_backward(s);
    kernels::ref::lstm_step_backward<T>(s);
  }
  void rnn_forward(const RnnStep<T>& s) const {
    if constexpr (std::is_same_v<T, float>)
      if (simd) return simd->rnn_step_forward(s);
    kernels::ref::rnn_step_forward<T>(s);
  }
  void rnn_backward(const RnnStep<T>& s) const {
    if constexpr (std::is_same_v<T, float>)
      if (simd) return simd->rnn_step_backward(s);
    kernels::ref::rnn_step_backward<T>(s);
  }
};

// The recurrent weight of one call, as the T products it takes part in: op(W) is W split into
// `groups` blocks of H rows (forward: z_q += W_q h, K = H), or W^T (backward: dh += W^T dz,
// K = G H, one group). multiply() computes the rows of a range of units in every group, so that
// a step can apply its kernel to them right away.
//
// Float with a SIMD GEMM packs op(W) once into the micro-kernel's row panels (what the blocked
// driver would repack at every step); a range of units is then a range of panels, computed tile
// by tile. K is cut into blocks whose slice of the B operand (kc x nr floats) stays in L1 while
// every panel of the range passes over it. Otherwise the range is all H units and multiply() is
// one plain GEMM per group.
template <typename T>
class RecurrentWeight {
 public:
  RecurrentWeight(const T* w, const Dims& d, bool transposed, int threads)
      : w_(w), h_(d.hidden), groups_(transposed ? 1 : d.gates),
        k_(transposed ? d.gate_rows() : d.hidden), transposed_(transposed), threads_(threads) {
    if constexpr (std::is_same_v<T, float>) {
      cfg_ = runtime::kernel_table().sgemm;
      if (cfg_) pack();
    }
  }

  // Units per panel (the last one may be shorter), and the number of panels.
  int64_t panel_units() const { return cfg_ ? cfg_->mr : h_; }
  int64_t panels() const { return cfg_ ? panels_ : 1; }
  // Threads for the steps, which split the panels between them; the products inside run on one.
  int step_threads(int64_t batch) const {
    if (!cfg_) return 1;
    const double flops = 2.0 * double(groups_ * h_) * double(k_) * double(batch);
    return int(std::max<int64_t>(1, std::min<int64_t>({threads_, panels_, int64_t(flops / 1e6)})));
  }

  // Rows [u0, u0 + units) of every group q (u0 a multiple of panel_units()):
  // c_q = beta c_q + op(W)_q[rows] b, with c_q = c + q * group_stride + (row - u0) * ldc and
  // b (K x n) of row stride ldb.
  void multiply(int64_t u0, int64_t units, const T* b, int64_t ldb, int64_t n, T beta, T* c,
                int64_t ldc, int64_t group_stride) const {
    if (!cfg_) {
      for (int64_t q = 0; q < groups_; ++q) {
        const T* a = transposed_ ? w_ + u0 : w_ + (q * h_ + u0) * h_;
        gemm(transposed_ ? Trans::T : Trans::N, Trans::N, units, n, k_, a, h_, b, ldb, beta,
             c + q * group_stride, ldc, nullptr, threads_);
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
        for (int64_t j = 0; j < n; j += nr) {
          t.n = int(std::min(nr, n - j));
          t.b = b + pc * ldb + j;
          for (int64_t q = 0; q < groups_; ++q)
            for (int64_t r = 0; r < units; r += mr) {
              t.m = int(std::min(mr, units - r));
              t.a = packed_ + q * group_floats_ + pc * panels_ * mr + (u0 + r) * t.k;
              t.c = c + q * group_stride + r * ldc + j;
              cfg_->ukernel(t);
            }
        }
      }
    }
  }

 private:
  void pack() {
    const int64_t mr = cfg_->mr;
    panels_ = (h_ + mr - 1) / mr;
    // Equal K blocks of at most 32 KiB of B slice (kc x nr floats).
    const int64_t kc_max = std::max<int64_t>(64, 8192 / cfg_->nr);
    kc_ = (k_ + kc_max - 1) / kc_max;
    kc_ = (k_ + kc_ - 1) / kc_;
    group_floats_ = panels_ * mr * k_;
    packed_ = runtime::workspace_of<float>(runtime::Slot::pad, size_t(groups_ * group_floats_));
    // op(W)(i, p) is at w[i * rs + p * cs]: group q's rows of W, or the columns of W.
    const int64_t rs = transposed_ ? 1 : h_, cs = transposed_ ? h_ : 1;
    for (int64_t q = 0; q < groups_; ++q)
      for (int64_t pc = 0; pc < k_; pc += kc_)
        cfg_->pack_a(packed_ + q * group_floats_ + pc * panels_ * mr,
                     reinterpret_cast<const float*>(w_) + q * h_ * h_ + pc * cs, rs, cs, h_,
                     std::min(kc_, k_ - pc));
  }

  const T* w_;
  int64_t h_, groups_, k_;
  bool transposed_;
  int threads_;
  const kernels::SgemmConfig* cfg_ = nullptr;
  int64_t panels_ = 0, kc_ = 0, group_floats_ = 0;
  float* packed_ = nullptr;
};

// Calls step(t, u0, units) for every step t in order (reverse: from the last) over all hidden
// units: with several threads, each takes a fixed range of whole panels, and a barrier separates
// the steps (each reads all of the previous one's states).
template <typename T, class Step>
void run_steps(const RecurrentWeight<T>& w, const Dims& d, bool reverse, Step step) {
  const auto time = [&](int64_t i) { return reverse ? d.steps - 1 - i : i; };
  const int threads = w.step_threads(d.batch);
  if (threads <= 1) {
    for (int64_t i = 0; i < d.steps; ++i) step(time(i), 0, d.hidden);
    return;
  }
  const int64_t panels = w.panels(), pu = w.panel_units();
#pragma omp parallel num_threads(threads)
  {
    int64_t tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    const int64_t u0 = panels * tid / threads * pu;
    const int64_t u1 = std::min(d.hidden, panels * (tid + 1) / threads * pu);
    for (int64_t i = 0; i < d.steps; ++i) {
      if (u1 > u0) step(time(i), u0, u1 - u0);
#pragma omp barrier
    }
  }
}

// The B operand of the next step's product: a dense (rows, B) copy of the rows each step
// produces. Read in place, the big matrices' column blocks have row strides of T B floats, which
// cost the forward steps 3-7% (measured); the copy is a small fraction of a step. Two buffers,
// since the next step's rows are written while other threads may still read the current ones.
// Indexed by time: operand i lives in buffer i % 2.
template <typename T>
class NextOperand {
 public:
  NextOperand(int64_t rows, int64_t batch)
      : size_(rows * batch), batch_(batch),
        data_(runtime::workspace_of<T>(runtime::Slot::operand, size_t(2 * rows * batch))) {}
  const T* get(int64_t i) const { return data_ + (i % 2) * size_; }
  // Rows [r0, r0 + n) of operand i from src (row stride ld).
  void fill(int64_t i, int64_t r0, int64_t n, const T* src, int64_t ld) {
    T* dst = data_ + (i % 2) * size_ + r0 * batch_;
    for (int64_t r = 0; r < n; ++r) std::copy(src + r * ld, src + r * ld + batch_, dst + r * batch_);
  }

 private:
  int64_t size_, batch_;
  T* data_;
};

// The pieces of `saved`: pre-activations / activated gates (G H, T B), hidden and (LSTM) cell
// states (H, (T + 1) B).
template <typename T>
struct Saved {
  T *gates, *hidden, *cells;
  Saved(T* base, const Dims& d)
      : gates(d.gates == 4 ? base : nullptr),
        hidden(base + (d.gates == 4 ? d.gate_rows() * d.ld : 0)),
        cells(d.gates == 4 ? hidden + d.hidden * d.state_ld : nullptr) {}
};

size_t saved_size(const Dims& d) {
  return size_t(d.hidden * d.state_ld * (d.gates == 4 ? 2 : 1) +
                (d.gates == 4 ? d.gate_rows() * d.ld : 0));
}

// y (T B, H) from the hidden states, and h_n = h_T.
template <typename T>
void write_outputs(const Dims& d, const T* hidden, T* y, T* h_n) {
  transpose(y, d.hidden, hidden + d.batch, d.state_ld, d.hidden, d.cols);
  if (h_n) std::copy(y + (d.steps - 1) * d.batch * d.hidden, y + d.cols * d.hidden, h_n);
}

// Input projection of all steps: z (G H, T B) with leading dimension ld_z = W_ih X^T + biases.
template <typename T>
void project_inputs(const Dims& d, const T* x, const T* w_ih, const T* b_ih, const T* b_hh, T* z,
                    int64_t ld_z, int threads) {
  const int64_t rows = d.gate_rows();
  T* bias = nullptr;
  if (b_ih || b_hh) {
    bias = runtime::workspace_of<T>(runtime::Slot::shared, size_t(rows));
    for (int64_t r = 0; r < rows; ++r) bias[r] = (b_ih ? b_ih[r] : T(0)) + (b_hh ? b_hh[r] : T(0));
  }
  gemm(Trans::N, Trans::T, rows, d.cols, d.input, w_ih, d.input, x, d.input, T(0), z, ld_z, bias,
       threads);
}

// The gradient reaching each step's hidden state from y, feature-major (H, T B), with grad_hn
// added to the last step.
template <typename T>
T* hidden_gradients(const Dims& d, const T* grad_y, const T* grad_hn) {
  T* dh = runtime::workspace_of<T>(runtime::Slot::chunk, size_t(d.hidden * d.ld));
  transpose(dh, d.ld, grad_y, d.hidden, d.cols, d.hidden);
  if (grad_hn)
    for (int64_t j = 0; j < d.hidden; ++j)
      for (int64_t b = 0; b < d.batch; ++b)
        dh[j * d.ld + (d.steps - 1) * d.batch + b] += grad_hn[b * d.hidden + j];
  return dh;
}

// After the backward steps: the weight and bias gradients as whole-sequence GEMMs over dz
// (G H, T B), grad_x = dz^T W_ih, and grad_h0 = (W_hh^T dz_1)^T.
template <typename T>
void finish_backward(const Dims& d, const T* dz, const T* x, const T* w_ih, const T* hidden,
                     const RecurrentWeight<T>& w_hh_t, const T* dz_first, T* grad_x,
                     T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0, int threads) {
  const int64_t rows = d.gate_rows();
  if (grad_w_ih)
    gemm(Trans::N, Trans::N, rows, d.input, d.cols, dz, d.ld, x, d.input, T(0), grad_w_ih,
         d.input, nullptr, threads);
  // The hidden states entering steps 1..T are blocks 0..T-1 of `hidden`: (H, T B) with ld
  // state_ld, read transposed.
  if (grad_w_hh)
    gemm(Trans::N, Trans::T, rows, d.hidden, d.cols, dz, d.ld, hidden, d.state_ld, T(0),
         grad_w_hh, d.hidden, nullptr, threads);
  if (grad_b) row_sums(grad_b, dz, d.ld, rows, d.cols, threads);
  if (grad_x)
    gemm(Trans::T, Trans::N, d.cols, d.input, rows, dz, d.ld, w_ih, d.input, T(0), grad_x,
         d.input, nullptr, threads);
  if (grad_h0) {
    T* dh0 = runtime::workspace_of<T>(runtime::Slot::col, size_t(d.hidden * d.batch));
    w_hh_t.multiply(0, d.hidden, dz_first, d.batch, d.batch, T(0), dh0, d.batch, 0);
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
  const int threads = get_num_threads();
  if (!saved) saved = runtime::workspace_of<T>(runtime::Slot::col_grad, saved_size(d));
  const Saved<T> s(saved, d);
  transpose(s.hidden, d.state_ld, h0, d.hidden, d.batch, d.hidden);
  transpose(s.cells, d.state_ld, c0, d.hidden, d.batch, d.hidden);
  project_inputs(d, x, w_ih, b_ih, b_hh, s.gates, d.ld, threads);

  const RecurrentWeight<T> w(w_hh, d, false, threads);
  const StepKernels<T> kernels;
  const int64_t gate_stride = d.hidden * d.ld;
  NextOperand<T> next(d.hidden, d.batch);  // h_t, dense
  next.fill(0, 0, d.hidden, s.hidden, d.state_ld);
  run_steps(w, d, false, [&](int64_t t, int64_t u0, int64_t units) {
    T* z = s.gates + u0 * d.ld + t * d.batch;
    const int64_t st = u0 * d.state_ld + t * d.batch;
    w.multiply(u0, units, next.get(t), d.batch, d.batch, T(1), z, d.ld, gate_stride);
    LstmStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.gates = z;
    step.gates_ld = d.ld;
    step.gate_stride = gate_stride;
    step.c_prev = s.cells + st;
    step.c = s.cells + st + d.batch;
    step.h = s.hidden + st + d.batch;
    step.state_ld = d.state_ld;
    kernels.lstm_forward(step);
    next.fill(t + 1, u0, units, step.h, d.state_ld);
  });
  write_outputs(d, s.hidden, y, h_n);
  if (c_n) transpose(c_n, d.hidden, s.cells + d.steps * d.batch, d.state_ld, d.hidden, d.batch);
}

template <typename T>
void lstm_backward(const RnnShape& shape, const T* grad_y, const T* grad_hn, const T* grad_cn,
                   const T* x, const T* w_ih, const T* w_hh, const T* saved, T* grad_x,
                   T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0, T* grad_c0) {
  const char* who = "lstm_backward";
  const Dims d = dims_of(shape, 4, who);
  if (d.batch == 0) return zero_weight_gradients(d, grad_w_ih, grad_w_hh, grad_b);
  require(grad_y && x && w_ih && w_hh && saved, who, "grad_y, x, w_ih, w_hh or saved");
  const int threads = get_num_threads();
  const Saved<T> s(const_cast<T*>(saved), d);  // read only
  T* dh = hidden_gradients(d, grad_y, grad_hn);
  T* dz = runtime::workspace_of<T>(runtime::Slot::col_grad, size_t(d.gate_rows() * d.ld));
  T* dc = runtime::workspace_of<T>(runtime::Slot::shared, size_t(d.hidden * d.batch));
  transpose(dc, d.batch, grad_cn, d.hidden, d.batch, d.hidden);

  const RecurrentWeight<T> w(w_hh, d, true, threads);
  const StepKernels<T> kernels;
  const int64_t gate_stride = d.hidden * d.ld;
  NextOperand<T> next(d.gate_rows(), d.batch);  // dz_t, dense
  run_steps(w, d, true, [&](int64_t t, int64_t u0, int64_t units) {
    T* dh_t = dh + u0 * d.ld + t * d.batch;
    const int64_t st = u0 * d.state_ld + t * d.batch;
    if (t + 1 < d.steps)
      w.multiply(u0, units, next.get(t + 1), d.batch, d.batch, T(1), dh_t, d.ld, 0);
    LstmStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.gates = s.gates + u0 * d.ld + t * d.batch;
    step.gates_ld = d.ld;
    step.gate_stride = gate_stride;
    step.c_prev = s.cells + st;
    step.c = s.cells + st + d.batch;
    step.state_ld = d.state_ld;
    step.dh = dh_t;
    step.dh_ld = d.ld;
    step.dc = dc + u0 * d.batch;
    step.dc_ld = d.batch;
    step.dz = dz + u0 * d.ld + t * d.batch;
    kernels.lstm_backward(step);
    for (int64_t q = 0; q < 4; ++q)
      next.fill(t, q * d.hidden + u0, units, step.dz + q * gate_stride, d.ld);
  });
  finish_backward(d, dz, x, w_ih, s.hidden, w, next.get(0), grad_x, grad_w_ih, grad_w_hh,
                  grad_b, grad_h0, threads);
  if (grad_c0) transpose(grad_c0, d.hidden, dc, d.batch, d.hidden, d.batch);
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
  // Steps 1..T's pre-activations go straight into their hidden-state blocks, activated in place.
  transpose(s.hidden, d.state_ld, h0, d.hidden, d.batch, d.hidden);
  project_inputs(d, x, w_ih, b_ih, b_hh, s.hidden + d.batch, d.state_ld, threads);

  const RecurrentWeight<T> w(w_hh, d, false, threads);
  const StepKernels<T> kernels;
  NextOperand<T> next(d.hidden, d.batch);  // h_t, dense
  next.fill(0, 0, d.hidden, s.hidden, d.state_ld);
  run_steps(w, d, false, [&](int64_t t, int64_t u0, int64_t units) {
    T* h = s.hidden + u0 * d.state_ld + (t + 1) * d.batch;
    w.multiply(u0, units, next.get(t), d.batch, d.batch, T(1), h, d.state_ld, 0);
    RnnStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.relu = act == RnnNonlinearity::relu;
    step.h = h;
    step.h_ld = d.state_ld;
    kernels.rnn_forward(step);
    next.fill(t + 1, u0, units, h, d.state_ld);
  });
  write_outputs(d, s.hidden, y, h_n);
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
  // dz_t replaces dh_t in place once step t is done with it.
  T* dz = hidden_gradients(d, grad_y, grad_hn);

  const RecurrentWeight<T> w(w_hh, d, true, threads);
  const StepKernels<T> kernels;
  NextOperand<T> next(d.hidden, d.batch);  // dz_t, dense
  run_steps(w, d, true, [&](int64_t t, int64_t u0, int64_t units) {
    T* dz_t = dz + u0 * d.ld + t * d.batch;
    if (t + 1 < d.steps)
      w.multiply(u0, units, next.get(t + 1), d.batch, d.batch, T(1), dz_t, d.ld, 0);
    RnnStep<T> step{};
    step.units = units;
    step.batch = d.batch;
    step.relu = act == RnnNonlinearity::relu;
    step.h = s.hidden + u0 * d.state_ld + (t + 1) * d.batch;
    step.h_ld = d.state_ld;
    step.dh = dz_t;
    step.dh_ld = d.ld;
    step.dz = dz_t;
    step.dz_ld = d.ld;
    kernels.rnn_backward(step);
    next.fill(t, u0, units, dz_t, d.ld);
  });
  finish_backward(d, dz, x, w_ih, s.hidden, w, next.get(0), grad_x, grad_w_ih, grad_w_hh,
                  grad_b, grad_h0, threads);
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
