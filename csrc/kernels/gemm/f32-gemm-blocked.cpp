// Portable BLIS-style SGEMM driver: owns the loops over N (nc), K (kc) and M (mc) blocks and over
// the register tiles of the micro-kernel it is given, packs A and B panels when that pays, and
// splits the output between OpenMP threads.
//
// Determinism: every element of C is computed by the same sequence of operations whatever the
// thread count: kc blocks in order of K, each a chain of FMAs in order of k inside one register
// lane, then c = alpha * acc + beta_eff * c (+ bias, relu on the last block). Threads only decide
// who computes which tile.
#include <algorithm>

#include "gemm/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnx::kernels {
namespace {

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

// Problems below this many flops run on one thread: waking a team costs more than it saves.
constexpr double kMinFlopsPerThread = 2.0e6;

struct Plan {
  // Rows per register tile: the micro-kernel's mr, or fewer when C has at most one cache block
  // of rows, so that they split evenly (16 rows as 8 + 8, not 14 + 2: a 2-row tile does a
  // seventh of the arithmetic per load). Packed A keeps the micro-kernel's panel stride mr,
  // its rows past tile_m zero.
  int64_t tile_m;
  bool pack_a, pack_b;
  bool split_m;     // threads take row blocks and share packed B; otherwise column blocks
  int threads;
  int64_t kc, mc, nc;           // blocks actually used (clipped to the problem)
  size_t a_floats, b_floats;    // per-thread A block, B panel (shared when split_m)
};

Plan make_plan(const SgemmConfig& cfg, const SgemmProblem& p, int num_threads) {
  Plan plan{};
  const int64_t m_tiles = ceil_div(p.m, cfg.mr), n_tiles = ceil_div(p.n, cfg.nr);
  plan.tile_m = p.m <= cfg.mc ? ceil_div(p.m, m_tiles) : cfg.mr;
  // B must be packed when its rows are not contiguous; otherwise packing (one extra pass over B)
  // pays only once enough row tiles reuse the packed panel. 12 was measured: (64, 512, 2048),
  // (16, 150, 12800) and (128, 256, 10) all run faster reading B in place.
  constexpr int64_t kMinRowTilesToPackB = 13;
  plan.pack_b = p.trans_b == Trans::T || m_tiles >= kMinRowTilesToPackB;
  // A micro-panels are reused once per column tile; a single column tile reads A directly.
  plan.pack_a = n_tiles > 1 && !p.a_in_place;

  const double flops = 2.0 * double(p.m) * double(p.n) * double(p.k);
  int threads = std::max(1, std::min<int>(num_threads, int(flops / kMinFlopsPerThread)));
  // Split the dimension whose tiles divide most evenly among the threads (64 rows = 5 row tiles
  // would split 3 + 2, while 256 columns = 8 column tiles split 4 + 4); rows on a tie, since
  // threads that split rows share one packed B panel.
  const auto balance = [threads](int64_t tiles) {
    const int64_t per_thread = ceil_div(tiles, threads);
    return double(tiles) / double(per_thread * threads);
  };
  plan.split_m = balance(m_tiles) >= balance(n_tiles);
  threads = int(std::min<int64_t>(threads, plan.split_m ? m_tiles : n_tiles));
  plan.threads = std::max(1, threads);

  // Equal kc blocks (k = 300 gives 150 + 150, not 256 + 44): the short block would run at a
  // fraction of the speed. Depends on k alone, so it cannot break thread-count invariance.
  plan.kc = ceil_div(p.k, ceil_div(p.k, cfg.kc));
  const int64_t rows = plan.split_m ? ceil_div(m_tiles, plan.threads) * plan.tile_m : p.m;
  const int64_t cols = plan.split_m ? p.n : ceil_div(n_tiles, plan.threads) * cfg.nr;
  plan.mc = std::min(cfg.mc, round_up(rows, plan.tile_m));
  plan.nc = std::min(cfg.nc, round_up(cols, cfg.nr));
  plan.a_floats = plan.pack_a ? size_t(ceil_div(plan.mc, plan.tile_m) * cfg.mr * plan.kc) : 0;
  plan.b_floats = plan.pack_b ? size_t(plan.nc * plan.kc) : 0;
  return plan;
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Views of op(A) and op(B) as strided matrices: op(A)(i, p) = a[i * a_rs + p * a_cs].
struct Operands {
  const float* a;
  int64_t a_rs, a_cs;
  const float* b;
  int64_t b_rs, b_cs;
};

// Computes C[m0:m1, n0:n1]. With `shared_b`, every thread of the team calls this with the same
// columns and its own rows, and the team packs each B panel together.
void gemm_region(const SgemmConfig& cfg, const SgemmProblem& p, const Plan& plan,
                 const Operands& op, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                 float* b_buf, float* a_buf, bool shared_b) {
  const int64_t mr = cfg.mr, nr = cfg.nr, tile_m = plan.tile_m;
  for (int64_t jc = n0; jc < n1; jc += plan.nc) {
    const int64_t nc = std::min(plan.nc, n1 - jc);
    for (int64_t pc = 0; pc < p.k; pc += plan.kc) {
      const int64_t kc = std::min(plan.kc, p.k - pc);
      const bool first = pc == 0, last = pc + kc >= p.k;

      if (plan.pack_b) {
        const int64_t panels = ceil_div(nc, nr);
        const float* src = op.b + pc * op.b_rs + jc * op.b_cs;
        if (shared_b) {
#pragma omp for schedule(static)
          for (int64_t jp = 0; jp < panels; ++jp)
            cfg.pack_b(b_buf + jp * nr * kc, src + jp * nr * op.b_cs, op.b_cs, op.b_rs,
                       std::min(nr, nc - jp * nr), kc);
        } else {
          cfg.pack_b(b_buf, src, op.b_cs, op.b_rs, nc, kc);
        }
      }

      for (int64_t ic = m0; ic < m1; ic += plan.mc) {
        const int64_t mc = std::min(plan.mc, m1 - ic);
        const float* a_block = op.a + ic * op.a_rs + pc * op.a_cs;
        if (plan.pack_a && tile_m == mr) {
          cfg.pack_a(a_buf, a_block, op.a_rs, op.a_cs, mc, kc);
        } else if (plan.pack_a) {  // one panel per tile
          for (int64_t ir = 0; ir < mc; ir += tile_m)
            cfg.pack_a(a_buf + ir / tile_m * mr * kc, a_block + ir * op.a_rs, op.a_rs, op.a_cs,
                       std::min(tile_m, mc - ir), kc);
        }

        SgemmTile t{};
        t.k = kc;
        t.alpha = p.alpha;
        t.beta = first ? p.beta : 1.0f;
        t.relu = last && p.relu;
        t.ldc = p.ldc;
        t.a_rs = plan.pack_a ? 1 : op.a_rs;
        t.a_cs = plan.pack_a ? mr : op.a_cs;
        t.ldb = plan.pack_b ? nr : op.b_rs;
        for (int64_t jr = 0; jr < nc; jr += nr) {
          t.n = int(std::min(nr, nc - jr));
          t.b = plan.pack_b ? b_buf + jr * kc : op.b + pc * op.b_rs + (jc + jr);
          t.bias_col = last && p.bias_mode == BiasMode::col ? p.bias + jc + jr : nullptr;
          for (int64_t ir = 0; ir < mc; ir += tile_m) {
            t.m = int(std::min(tile_m, mc - ir));
            t.a = plan.pack_a ? a_buf + ir / tile_m * mr * kc : a_block + ir * op.a_rs;
            t.c = p.c + (ic + ir) * p.ldc + jc + jr;
            t.bias_row = last && p.bias_mode == BiasMode::row ? p.bias + ic + ir : nullptr;
            cfg.ukernel(t);
          }
        }
      }
      // The next kc block repacks the shared panel: wait until every thread is done with it.
      if (plan.pack_b && shared_b) {
#pragma omp barrier
      }
    }
  }
}

}  // namespace

size_t sgemm_workspace_floats(const SgemmConfig& cfg, const SgemmProblem& p, int num_threads) {
  const Plan plan = make_plan(cfg, p, num_threads);
  const size_t b_total = plan.split_m ? plan.b_floats : plan.b_floats * plan.threads;
  // Each buffer starts on a 64-byte boundary: round every piece to 16 floats.
  return size_t(round_up(int64_t(b_total), 16)) +
         size_t(round_up(int64_t(plan.a_floats), 16)) * plan.threads;
}

void sgemm_blocked(const SgemmConfig& cfg, const SgemmProblem& p, float* workspace, int num_threads) {
  const Plan plan = make_plan(cfg, p, num_threads);
  Operands op;
  op.a = p.a;
  op.a_rs = p.trans_a == Trans::N ? p.lda : 1;
  op.a_cs = p.trans_a == Trans::N ? 1 : p.lda;
  op.b = p.b;
  op.b_rs = p.trans_b == Trans::N ? p.ldb : 1;
  op.b_cs = p.trans_b == Trans::N ? 1 : p.ldb;

  const size_t b_stride = size_t(round_up(int64_t(plan.b_floats), 16));
  const size_t b_total = plan.split_m ? b_stride : b_stride * plan.threads;
  float* a_bufs = workspace + round_up(int64_t(b_total), 16);
  const size_t a_stride = size_t(round_up(int64_t(plan.a_floats), 16));

  const int64_t m_tiles = ceil_div(p.m, cfg.mr), n_tiles = ceil_div(p.n, cfg.nr);
#pragma omp parallel num_threads(plan.threads) if (plan.threads > 1)
  {
    const int tid = thread_id();
    float* a_buf = a_bufs + a_stride * tid;
    if (plan.split_m) {
      const int64_t m0 = std::min(p.m, m_tiles * tid / plan.threads * plan.tile_m);
      const int64_t m1 = std::min(p.m, m_tiles * (tid + 1) / plan.threads * plan.tile_m);
      gemm_region(cfg, p, plan, op, m0, m1, 0, p.n, workspace, a_buf, true);
    } else {
      const int64_t n0 = std::min(p.n, n_tiles * tid / plan.threads * cfg.nr);
      const int64_t n1 = std::min(p.n, n_tiles * (tid + 1) / plan.threads * cfg.nr);
      gemm_region(cfg, p, plan, op, 0, p.m, n0, n1, workspace + b_stride * tid, a_buf, false);
    }
  }
}

}  // namespace nnx::kernels
