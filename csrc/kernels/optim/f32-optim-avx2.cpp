// The optim kernels of optim/optim-simd.h, compiled for avx2.
#include "optim/optim-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const OptimKernels& optim_kernels() { return simd::optim_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
