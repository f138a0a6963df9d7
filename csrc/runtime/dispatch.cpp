// The kernel table: filled once from CPUID (or NNX_ISA), read by every API call.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "internal.h"

namespace nnx {
namespace {

runtime::KernelTable make_table(Isa isa) {
  runtime::KernelTable t;
  t.isa = isa;
  switch (isa) {
    case Isa::avx512:
      t.sgemm = &kernels::avx512::sgemm_config();
      t.act = &kernels::avx512::act_kernels();
      t.loss = &kernels::avx512::loss_kernels();
      t.optim = &kernels::avx512::optim_kernels();
      t.conv = &kernels::avx512::conv_kernels();
      t.pool = &kernels::avx512::pool_kernels();
      t.norm = &kernels::avx512::norm_kernels();
      t.dist = &kernels::avx512::dist_kernels();
      t.rnn = &kernels::avx512::rnn_kernels();
      break;
    case Isa::avx2:
      t.sgemm = &kernels::avx2::sgemm_config();
      t.act = &kernels::avx2::act_kernels();
      t.loss = &kernels::avx2::loss_kernels();
      t.optim = &kernels::avx2::optim_kernels();
      t.conv = &kernels::avx2::conv_kernels();
      t.pool = &kernels::avx2::pool_kernels();
      t.norm = &kernels::avx2::norm_kernels();
      t.dist = &kernels::avx2::dist_kernels();
      t.rnn = &kernels::avx2::rnn_kernels();
      break;
    case Isa::ref: break;
  }
  return t;
}

Isa best_isa() {
  const CpuFeatures& f = cpu_features();
  if (f.supports(Isa::avx512)) return Isa::avx512;
  if (f.supports(Isa::avx2)) return Isa::avx2;
  return Isa::ref;
}

void require_supported(Isa isa, const char* where) {
  if (!cpu_features().supports(isa))
    throw std::runtime_error(std::string(where) + ": this CPU does not support " + isa_name(isa) +
                             " (best available: " + isa_name(best_isa()) + ")");
}

Isa initial_isa() {
  const char* env = std::getenv("NNX_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  Isa isa;
  try {
    isa = parse_isa(env);
  } catch (const std::invalid_argument&) {
    throw std::runtime_error(std::string("NNX_ISA='") + env +
                             "' is not one of ref, avx2, avx512");
  }
  require_supported(isa, "NNX_ISA");
  return isa;
}

// Two tables, swapped atomically by set_isa, so readers never see a half-written table.
runtime::KernelTable g_tables[2];
std::atomic<const runtime::KernelTable*> g_active{nullptr};
std::mutex g_mutex;

}  // namespace

namespace runtime {
const KernelTable& kernel_table() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t != nullptr) return *t;
  std::lock_guard<std::mutex> lock(g_mutex);
  t = g_active.load(std::memory_order_relaxed);
  if (t == nullptr) {
    g_tables[0] = make_table(initial_isa());
    t = &g_tables[0];
    g_active.store(t, std::memory_order_release);
  }
  return *t;
}
}  // namespace runtime

Isa active_isa() { return runtime::kernel_table().isa; }

void set_isa(Isa isa) {
  require_supported(isa, "set_isa");
  std::lock_guard<std::mutex> lock(g_mutex);
  const runtime::KernelTable* current = g_active.load(std::memory_order_relaxed);
  runtime::KernelTable* next = current == &g_tables[0] ? &g_tables[1] : &g_tables[0];
  *next = make_table(isa);
  g_active.store(next, std::memory_order_release);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref: return "ref";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  if (name == "ref") return Isa::ref;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw std::invalid_argument("unknown ISA '" + name + "': expected ref, avx2 or avx512");
}

}  // namespace nnx
