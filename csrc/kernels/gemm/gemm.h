// Kernel-layer interface of the GEMM family: the micro-kernel contract, the per-ISA blocking
// configuration, the blocked driver and the scalar reference. No argument checking happens here:
// callers (csrc/runtime) validate first.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nnx/gemm.h"

namespace nnx::kernels {

// One register tile of C: C[m x n] = alpha * A_tile @ B_tile (+ beta * C) (+ bias) (relu),
// with m <= MR and n <= NR of the micro-kernel that receives it.
//   A element (i, p) is a[i * a_rs + p * a_cs]: a packed micro-panel has a_rs = 1, a_cs = MR.
//   B row p is the n floats at b + p * ldb: a packed micro-panel has ldb = NR.
// The micro-kernel reads only the first m rows of A and the first n columns of B, never reads C
// when beta == 0, and writes exactly the m x n tile.
struct SgemmTile {
  int64_t k;
  const float* a;
  int64_t a_rs, a_cs;
  const float* b;
  int64_t ldb;
  float* c;
  int64_t ldc;
  int m, n;
  float alpha, beta;
  const float* bias_row;  // m values, one per row of the tile, or null
  const float* bias_col;  // n values, one per column of the tile, or null
  bool relu;
};
using SgemmUkernel = void (*)(const SgemmTile&);

// Packs the rows [0, m) x columns [0, k) of a strided matrix X (element (i, p) at
// x[i * rs + p * cs]) into micro-panels of `mr` rows: panel r holds rows [r*mr, r*mr+mr), stored
// column by column (k columns of mr values), the rows past m filled with zeros.
using PackFn = void (*)(float* dst, const float* x, int64_t rs, int64_t cs, int64_t m, int64_t k);

// Blocking of one ISA, chosen by measurement (bench/compare.py, bench/gemm_bench).
struct SgemmConfig {
  const char* ukernel_name;  // e.g. "f32_gemm_ukernel_14x32__avx512"
  int mr, nr;                // register tile
  int64_t kc, mc, nc;        // cache blocks: mc and nc are multiples of mr and nr
  SgemmUkernel ukernel;
  PackFn pack_a;             // packs op(A) row panels of mr rows
  PackFn pack_b;             // packs op(B)^T row panels of nr rows (= op(B) column panels)
};

namespace avx2 { const SgemmConfig& sgemm_config(); }
namespace avx512 { const SgemmConfig& sgemm_config(); }

struct SgemmProblem {
  Trans trans_a, trans_b;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
  const float* bias;
  BiasMode bias_mode;
  bool relu;
  // Read op(A) where it lies instead of packing its blocks: for a caller whose A is large, read
  // once from memory, and has a padded row stride, not a multiple of 1 KiB (so that a tile's rows
  // do not share cache sets). The recurrent layers' weight gradients (4H x T B) run faster so.
  bool a_in_place = false;
};

// Floats of scratch that sgemm_blocked needs for this problem and thread count.
size_t sgemm_workspace_floats(const SgemmConfig& cfg, const SgemmProblem& p, int num_threads);

// BLIS-style blocked SGEMM over cfg's micro-kernel. `workspace` holds sgemm_workspace_floats()
// floats, 64-byte aligned. Threads split C into disjoint output blocks only, so the result is
// bitwise identical for any num_threads.
void sgemm_blocked(const SgemmConfig& cfg, const SgemmProblem& p, float* workspace, int num_threads);

// Naive reference: one dot product per element of C, accumulated in T in order of p.
template <typename T>
void gemm_ref(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
              int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias,
              BiasMode bias_mode, bool relu, int num_threads);

// C = beta * C (+ bias) (relu): what GEMM reduces to when k == 0 or alpha == 0 (BLAS semantics:
// A and B are then not read). C is not read when beta == 0.
template <typename T>
void gemm_scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc, const T* bias, BiasMode bias_mode,
                  bool relu);

}  // namespace nnx::kernels
