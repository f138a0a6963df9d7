// AVX-512 blocking for SGEMM, chosen by a sweep on Zen 5 (48 KiB L1d, 1 MiB L2 per core, 32 MiB
// L3) of kc in 256..2048, mc in 42..336, nc in 512..4096, scored by speed relative to numpy in the
// same process (the machine is shared; ratios survive its noise, absolute times do not).
// A deep kc wins: it halves the passes over C, and Zen 5's L2 streams both the A micro-panel
// (14 x 1024 floats, 56 KiB) and the B micro-panel (1024 x 32 floats, 128 KiB) fast enough to
// keep both FMA pipes busy. The A block (84 x 1024, 336 KiB) stays in L2, the B panel
// (1024 x 1024, 4 MiB) in L3.
#include "gemm/gemm.h"
#include "gemm/pack.h"

namespace nnx::kernels::avx512 {

void f32_gemm_ukernel_14x32__avx512(const SgemmTile& t);

const SgemmConfig& sgemm_config() {
  static const SgemmConfig config = {
      "f32_gemm_ukernel_14x32__avx512", 14, 32, 1024, 14 * 6, 32 * 32,
      &f32_gemm_ukernel_14x32__avx512, &pack_panels<14>, &pack_panels<32>,
  };
  return config;
}

}  // namespace nnx::kernels::avx512
