// The conv kernels of conv/conv-simd.h, compiled for avx512.
#include "conv/conv-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const ConvKernels& conv_kernels() { return simd::conv_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
