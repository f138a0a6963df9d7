// Runtime internals shared by the API files: the kernel table and the scratch workspace.
#pragma once

#include <cstddef>
#include <type_traits>

#include "act/act.h"
#include "conv/conv.h"
#include "dist/dist.h"
#include "gemm/gemm.h"
#include "loss/loss.h"
#include "norm/norm.h"
#include "optim/optim.h"
#include "pool/pool.h"
#include "rnn/rnn.h"
#include "nnx/runtime.h"

namespace nnx::runtime {

// One entry per kernel family; null means "use the scalar reference".
struct KernelTable {
  Isa isa = Isa::ref;
  const kernels::SgemmConfig* sgemm = nullptr;
  const kernels::ActKernels* act = nullptr;
  const kernels::LossKernels* loss = nullptr;
  const kernels::OptimKernels* optim = nullptr;
  const kernels::ConvKernels* conv = nullptr;
  const kernels::PoolKernels* pool = nullptr;
  const kernels::NormKernels* norm = nullptr;
  const kernels::DistKernels* dist = nullptr;
  const kernels::RnnKernels* rnn = nullptr;
};

// The table for the active ISA, filled on first use.
const KernelTable& kernel_table();

// One family's float kernels of the active ISA, or null: for double (which always runs the scalar
// reference) and under NNX_ISA=ref. Usage: float_kernels<T>(&KernelTable::act).
template <typename T, typename Table>
const Table* float_kernels(const Table* KernelTable::*family) {
  if constexpr (std::is_same_v<T, float>) return kernel_table().*family;
  return nullptr;
}

// Named scratch buffers, one set per calling thread, 64-byte aligned, grown on demand and reused
// across calls, so hot loops never allocate. A kernel that needs two buffers at once takes two
// different slots; buffers shared by a parallel region come from the calling thread's `shared`.
enum class Slot : int {
  gemm = 0, col = 1, col_grad = 2, chunk = 3, shared = 4, pad = 5, operand = 6, weights = 7, count = 8
};
void* workspace(Slot slot, size_t bytes);
template <typename T>
T* workspace_of(Slot slot, size_t count) {
  return static_cast<T*>(workspace(slot, count * sizeof(T)));
}

// An SGEMM whose arguments are already checked, on exactly `threads` threads (1 inside a parallel
// region). The bias pointer and epilogue are those of SgemmProblem.
void sgemm_checked(const kernels::SgemmProblem& p, int threads);

}  // namespace nnx::runtime
