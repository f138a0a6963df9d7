// The batch-norm kernels of norm/norm-simd.h, compiled for avx512.
#include "norm/norm-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const NormKernels& norm_kernels() { return simd::norm_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
