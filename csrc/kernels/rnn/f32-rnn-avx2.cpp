// The recurrent step kernels of rnn/rnn-simd.h, compiled for avx2.
#include "rnn/rnn-simd.h"
#include "simd/vec-avx2.h"

namespace nnx::kernels::avx2 {

const RnnKernels& rnn_kernels() { return simd::rnn_table<VecF32>(); }

}  // namespace nnx::kernels::avx2
