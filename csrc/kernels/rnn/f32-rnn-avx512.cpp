// The recurrent step kernels of rnn/rnn-simd.h, compiled for avx512.
#include "rnn/rnn-simd.h"
#include "simd/vec-avx512.h"

namespace nnx::kernels::avx512 {

const RnnKernels& rnn_kernels() { return simd::rnn_table<VecF32>(); }

}  // namespace nnx::kernels::avx512
