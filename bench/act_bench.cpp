// Native activation and softmax benchmark (nnx/nn.h) at the activation and softmax calls of the
// shape files. Each call is first checked against the double-precision reference, forward and
// backward, then timed; GB/s and % of the STREAM-triad bandwidth.
//
//   relu|tanh|sigmoid|leaky_relu|elu|softplus|hardsigmoid <name> n    (leaky_relu slope 0.01,
//                                                                       elu alpha 1)
//   softmax <name> rows cols [log]                                      log: log-softmax
//
// Bytes per call: the arrays the kernel reads and writes, once each: an activation's forward
// x + y; its backward grad_y + grad_x + what f' needs (y for sigmoid and tanh, x and y for elu,
// x for the others); softmax x + y forward, grad_y + y + grad_x backward.
#include "common.h"
#include "nnx/nn.h"

namespace {

using nnxbench::Buffer;
constexpr auto kBound = nnxbench::Bound::memory;
using nnx::Activation;

struct Function {
  const char* name;
  Activation act;
  float alpha;
  int backward_inputs;  // arrays besides grad_y that the backward reads
};
const Function kFunctions[] = {
    {"relu", Activation::relu, 0, 1},           {"tanh", Activation::tanh, 0, 1},
    {"sigmoid", Activation::sigmoid, 0, 1},     {"leaky_relu", Activation::leaky_relu, 0.01f, 1},
    {"elu", Activation::elu, 1, 2},             {"softplus", Activation::softplus, 0, 1},
    {"hardsigmoid", Activation::hardsigmoid, 0, 1},
};

// One activation or softmax call: `rows` x `cols` values (rows = 1 for activations).
struct Act {
  const Function* fn = nullptr;  // null: softmax
  bool log = false;
  int64_t rows = 1, cols = 1;
  Buffer<float> x, y, gy, gx;

  explicit Act(const nnxbench::Shape& s) {
    if (s.kind == "softmax") {
      const auto v = s.numbers(2, {"log"});
      rows = v[0], cols = v[1], log = s.has("log");
    } else {
      for (const Function& f : kFunctions)
        if (s.kind == f.name) fn = &f;
      cols = s.numbers(1)[0];
    }
    // Wide enough to reach both tails of sigmoid, tanh and softplus.
    x = nnxbench::uniform(size(), 1, 6.0f);
    gy = nnxbench::uniform(size(), 2);
    y.resize(size()), gx.resize(size());
  }
  size_t size() const { return size_t(rows * cols); }

  template <class T>
  void forward(T* out, const T* in) const {
    if (fn) nnx::activation_forward<T>(fn->act, out, in, cols, T(fn->alpha));
    else nnx::softmax_forward<T>(out, in, rows, cols, log);
  }
  template <class T>
  void backward(T* grad_in, const T* grad_out, const T* in, const T* out) const {
    if (fn) nnx::activation_backward<T>(fn->act, grad_in, grad_out, in, out, cols, T(fn->alpha));
    else nnx::softmax_backward<T>(grad_in, grad_out, out, rows, cols, log);
  }
  void forward() { forward(y.data(), x.data()); }
  void backward() { backward(gx.data(), gy.data(), x.data(), y.data()); }

  double forward_bytes() const { return 8.0 * double(size()); }
  double backward_bytes() const { return 4.0 * double(size()) * (2 + (fn ? fn->backward_inputs : 1)); }
  std::string label() const {
    return fn ? "n=" + std::to_string(cols)
              : std::to_string(rows) + "x" + std::to_string(cols) + (log ? " log" : "");
  }
};

void validate(Act& a, const std::string& what) {
  a.forward();
  a.backward();
  const auto x = nnxbench::widen(a.x), gy = nnxbench::widen(a.gy);
  Buffer<double> y(a.size()), gx(a.size());
  a.forward(y.data(), x.data());
  a.backward(gx.data(), gy.data(), x.data(), y.data());
  nnxbench::check_close(what + " forward", a.y.data(), y.data(), y.size(), 1e-5, 1e-6);
  nnxbench::check_close(what + " backward", a.gx.data(), gx.data(), gx.size(), 1e-5, 1e-6);
}

int setup() {
  std::vector<std::string> kinds{"softmax"};
  for (const Function& f : kFunctions) kinds.push_back(f.name);
  return nnxbench::for_each_shape(kinds, [](const nnxbench::Shape& s) {
    auto a = std::make_shared<Act>(s);
    validate(*a, s.id() + " (" + a->label() + ")");
    nnxbench::add(s.id() + "/fwd", a->label(), kBound, a->forward_bytes(), [a] { a->forward(); });
    nnxbench::add(s.id() + "/bwd", a->label(), kBound, a->backward_bytes(), [a] { a->backward(); });
    return 2;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return nnxbench::main(argc, argv, "act", kBound, setup);
}
