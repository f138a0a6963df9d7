// The pooling kernels of pool/pool-simd.h, compiled for avx2.
#include "pool/pool-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const PoolKernels& pool_kernels() { return simd::pool_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
