// Native SGEMM benchmark (nnx::sgemm) at the GEMM shapes of the shape files (the Linear layers
// of the models, forward and both backward products; square sizes as a yardstick). Every shape
// is first checked against the float64 reference (nnx::dgemm), then timed; GFLOP/s and % of the
// measured FMA peak.
//
//   gemm <name> M N K [NN|NT|TN|TT] [bias] [relu]
//     C (M x N) = op(A) (M x K) @ op(B) (K x N), row-major; N = as stored, T = transposed;
//     bias: a fused bias per column (a Linear layer's); relu: a fused ReLU.
#include "common.h"
#include "nnx/gemm.h"

#include <type_traits>

namespace {

using nnxbench::Buffer;
constexpr auto kBound = nnxbench::Bound::compute;
using nnx::Trans;

struct Gemm {
  int64_t m, n, k;
  Trans ta = Trans::N, tb = Trans::N;
  bool relu = false;
  Buffer<float> a, b, bias, c;  // bias is empty when there is none

  explicit Gemm(const nnxbench::Shape& s) {
    const auto v = s.numbers(3, {"NN", "NT", "TN", "TT", "bias", "relu"});
    m = v[0], n = v[1], k = v[2];
    if (s.has("TN") || s.has("TT")) ta = Trans::T;
    if (s.has("NT") || s.has("TT")) tb = Trans::T;
    relu = s.has("relu");
    a = nnxbench::uniform(size_t(m * k), 1);
    b = nnxbench::uniform(size_t(k * n), 2);
    if (s.has("bias")) bias = nnxbench::uniform(size_t(n), 3);
    c.resize(size_t(m * n));
  }
  int64_t lda() const { return ta == Trans::N ? k : m; }
  int64_t ldb() const { return tb == Trans::N ? n : k; }

  template <class T>
  void run(T* out, const T* pa, const T* pb, const T* pbias) const {
    nnx::GemmEpilogue e;
    e.bias = pbias;
    e.bias_mode = pbias ? nnx::BiasMode::col : nnx::BiasMode::none;
    e.relu = relu;
    if constexpr (std::is_same_v<T, float>)
      nnx::sgemm(ta, tb, m, n, k, 1.0f, pa, lda(), pb, ldb(), 0.0f, out, n, e);
    else
      nnx::dgemm(ta, tb, m, n, k, 1.0, pa, lda(), pb, ldb(), 0.0, out, n, e);
  }
  void run() { run(c.data(), a.data(), b.data(), bias.empty() ? nullptr : bias.data()); }

  std::string label() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + " " +
           char(ta) + char(tb) + (bias.empty() ? "" : " +bias") + (relu ? " +relu" : "");
  }
};

void validate(Gemm& g, const std::string& what) {
  g.run();
  const auto a = nnxbench::widen(g.a), b = nnxbench::widen(g.b), bias = nnxbench::widen(g.bias);
  Buffer<double> ref(g.c.size());
  g.run(ref.data(), a.data(), b.data(), bias.empty() ? nullptr : bias.data());
  nnxbench::check_near(what, g.c.data(), ref.data(), ref.size());
}

int setup() {
  return nnxbench::for_each_shape({"gemm"}, [](const nnxbench::Shape& s) {
    auto g = std::make_shared<Gemm>(s);
    validate(*g, s.id() + " (" + g->label() + ")");
    const double flops = 2.0 * double(g->m) * double(g->n) * double(g->k);
    nnxbench::add(s.id(), g->label(), kBound, flops, [g] { g->run(); });
    return 1;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return nnxbench::main(argc, argv, "gemm", kBound, setup);
}
