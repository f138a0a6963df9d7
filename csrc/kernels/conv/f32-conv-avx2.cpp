// The conv kernels of conv/conv-simd.h, compiled for avx2.
#include "conv/conv-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const ConvKernels& conv_kernels() { return simd::conv_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
