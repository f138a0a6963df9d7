// The distance kernels of dist/dist-simd.h, compiled for avx2.
#include "dist/dist-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const DistKernels& dist_kernels() { return simd::dist_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
