// The loss kernels of loss/loss-simd.h, compiled for avx2.
#include "loss/loss-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const LossKernels& loss_kernels() { return simd::loss_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
