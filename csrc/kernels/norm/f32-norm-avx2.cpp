// The batch-norm kernels of norm/norm-simd.h, compiled for avx2.
#include "norm/norm-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const NormKernels& norm_kernels() { return simd::norm_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
