// Public GEMM entry points: validate, then hand over to the kernels of the active ISA.
#include "nnx/gemm.h"

#include <stdexcept>
#include <string>

#include "internal.h"

namespace nnx {
namespace {

void fail(const std::string& what) { throw std::invalid_argument("gemm: " + what); }

void check_ld(const char* name, int64_t ld, int64_t rows, int64_t cols) {
  const int64_t need = cols > 1 ? cols : 1;
  if (ld < need)
    fail(std::string(name) + " = " + std::to_string(ld) + " is smaller than the row length " +
         std::to_string(cols) + " of a " + std::to_string(rows) + " x " + std::to_string(cols) +
         " matrix");
}

template <typename T>
void validate(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
              const T* b, int64_t ldb, const T* c, int64_t ldc, const GemmEpilogue& ep) {
  if (m < 0 || n < 0 || k < 0)
    fail("sizes must be >= 0, got m=" + std::to_string(m) + " n=" + std::to_string(n) +
         " k=" + std::to_string(k));
  // Stored shapes, before op().
  check_ld("lda", lda, ta == Trans::N ? m : k, ta == Trans::N ? k : m);
  check_ld("ldb", ldb, tb == Trans::N ? k : n, tb == Trans::N ? n : k);
  check_ld("ldc", ldc, m, n);
  if (m > 0 && n > 0 && c == nullptr) fail("C is null");
  if (m > 0 && n > 0 && k > 0 && (a == nullptr || b == nullptr)) fail("A or B is null");
  if (ep.bias_mode != BiasMode::none && ep.bias == nullptr) fail("bias mode set but bias is null");
  if (ep.bias_mode == BiasMode::none && ep.bias != nullptr) fail("bias given without a bias mode");
}

}  // namespace

void sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const GemmEpilogue& ep) {
  validate(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, ep);
  const kernels::SgemmProblem p{trans_a, trans_b, m,  n,   k,   alpha, a,
                                lda,     b,       ldb, beta, c, ldc, static_cast<const float*>(ep.bias),
                                ep.bias_mode, ep.relu};
  runtime::sgemm_checked(p, get_num_threads());
}

namespace runtime {
void sgemm_checked(const kernels::SgemmProblem& p, int threads) {
  if (p.m == 0 || p.n == 0) return;
  if (p.k == 0 || p.alpha == 0.0f) {
    kernels::gemm_scale_c(p.m, p.n, p.beta, p.c, p.ldc, p.bias, p.bias_mode, p.relu);
    return;
  }
  const KernelTable& table = kernel_table();
  if (table.sgemm == nullptr) {
    kernels::gemm_ref<float>(p.trans_a, p.trans_b, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb,
                             p.beta, p.c, p.ldc, p.bias, p.bias_mode, p.relu, threads);
    return;
  }
  const size_t floats = kernels::sgemm_workspace_floats(*table.sgemm, p, threads);
  kernels::sgemm_blocked(*table.sgemm, p, workspace_of<float>(Slot::gemm, floats), threads);
}
}  // namespace runtime

void dgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc, const GemmEpilogue& ep) {
  validate(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, ep);
  if (m == 0 || n == 0) return;
  const auto* bias = static_cast<const double*>(ep.bias);
  if (k == 0 || alpha == 0.0) {
    kernels::gemm_scale_c(m, n, beta, c, ldc, bias, ep.bias_mode, ep.relu);
    return;
  }
  kernels::gemm_ref<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias,
                            ep.bias_mode, ep.relu, get_num_threads());
}

}  // namespace nnx
