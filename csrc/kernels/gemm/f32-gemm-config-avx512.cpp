// AVX-512 blocking for SGEMM. Chosen by measurement on Zen 5 (48 KiB L1d, 1 MiB L2 per core):
// the B micro-panel (kc x 32 floats) stays in L1 while the A block (mc x kc) streams from L2 and
// the B panel (kc x nc) lives in L3.
#include "gemm/gemm.h"
#include "gemm/pack.h"

namespace nnx::kernels::avx512 {

void f32_gemm_ukernel_14x32__avx512(const SgemmTile& t);

const SgemmConfig& sgemm_config() {
  static const SgemmConfig config = {
      "f32_gemm_ukernel_14x32__avx512", 14, 32, 256, 14 * 24, 32 * 128,
      &f32_gemm_ukernel_14x32__avx512, &pack_panels<14>, &pack_panels<32>,
  };
  return config;
}

}  // namespace nnx::kernels::avx512
