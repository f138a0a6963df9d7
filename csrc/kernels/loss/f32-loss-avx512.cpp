// The loss kernels of loss/loss-simd.h, compiled for avx512.
#include "loss/loss-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const LossKernels& loss_kernels() { return simd::loss_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
