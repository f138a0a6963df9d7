// The optim kernels of optim/optim-simd.h, compiled for avx512.
#include "optim/optim-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const OptimKernels& optim_kernels() { return simd::optim_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
