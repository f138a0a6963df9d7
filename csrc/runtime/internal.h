// Runtime internals shared by the API files: the kernel table and the scratch workspace.
#pragma once

#include <cstddef>

#include "act/act.h"
#include "gemm/gemm.h"
#include "loss/loss.h"
#include "optim/optim.h"
#include "nnx/runtime.h"

namespace nnx::runtime {

// One entry per kernel family; null means "use the scalar reference".
struct KernelTable {
  Isa isa = Isa::ref;
  const kernels::SgemmConfig* sgemm = nullptr;
  const kernels::ActKernels* act = nullptr;
  const kernels::LossKernels* loss = nullptr;
  const kernels::OptimKernels* optim = nullptr;
};

// The table for the active ISA, filled on first use.
const KernelTable& kernel_table();

// Named scratch buffers, one set per calling thread, 64-byte aligned, grown on demand and reused
// across calls, so hot loops never allocate. A kernel that needs two buffers at once takes two
// different slots.
enum class Slot : int { gemm = 0, aux = 1, count = 2 };
void* workspace(Slot slot, size_t bytes);

}  // namespace nnx::runtime
