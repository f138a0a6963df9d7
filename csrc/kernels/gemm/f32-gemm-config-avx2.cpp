// AVX2 + FMA blocking for SGEMM: 6 x 16 register tile. The micro-panels are half as wide as
// AVX-512's, so kc is halved to keep the same L2 footprint.
#include "gemm/gemm.h"
#include "gemm/pack.h"

namespace nnx::kernels::avx2 {

void f32_gemm_ukernel_6x16__avx2(const SgemmTile& t);

const SgemmConfig& sgemm_config() {
  static const SgemmConfig config = {
      "f32_gemm_ukernel_6x16__avx2", 6, 16, 512, 6 * 16, 16 * 64,
      &f32_gemm_ukernel_6x16__avx2, &pack_panels<6>, &pack_panels<16>,
  };
  return config;
}

}  // namespace nnx::kernels::avx2
