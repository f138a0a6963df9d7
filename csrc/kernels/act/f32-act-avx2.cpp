// The act kernels of act/act-simd.h, compiled for avx2.
#include "act/act-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const ActKernels& act_kernels() { return simd::act_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
