// The distance kernels of dist/dist-simd.h, compiled for avx512.
#include "dist/dist-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const DistKernels& dist_kernels() { return simd::dist_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
