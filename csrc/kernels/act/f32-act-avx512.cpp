// The act kernels of act/act-simd.h, compiled for avx512.
#include "act/act-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const ActKernels& act_kernels() { return simd::act_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
