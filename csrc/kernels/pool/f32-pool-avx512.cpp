// The pooling kernels of pool/pool-simd.h, compiled for avx512.
#include "pool/pool-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const PoolKernels& pool_kernels() { return simd::pool_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
