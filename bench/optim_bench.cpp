// Native optimizer benchmark (nnx::sgd_step / adam_step): one optimizer step over all parameter
// tensors of a model, one call per tensor as nnx.optim does. Every tensor's update is first
// checked against the double-precision reference, then the whole step is timed; GB/s and % of the
// STREAM-triad bandwidth (an update is a few operations per value it moves).
//
//   sgd <name> sizes...     momentum 0.9, weight decay 1e-4 (the usual ResNet recipe)
//   adam <name> sizes...    lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay
//     sizes: the element count of each parameter tensor, `k*n` for k tensors of n elements.
//
// Bytes per step: SGD reads param, grad and the momentum buffer and writes param and buffer
// (20 bytes per parameter); Adam reads param, grad and both moments and writes three (28).
#include "common.h"
#include "nnx/nn.h"

namespace {

using nnxbench::Buffer;
constexpr auto kBound = nnxbench::Bound::memory;

struct Tensor {
  Buffer<float> param, grad, m, v;  // v: Adam only
};

struct Step {
  bool adam;
  nnx::SgdOptions sgd;
  nnx::AdamOptions adam_options;
  std::vector<Tensor> tensors;
  int64_t parameters = 0;

  explicit Step(const nnxbench::Shape& s) : adam(s.kind == "adam") {
    sgd.lr = 0.1, sgd.momentum = 0.9, sgd.weight_decay = 1e-4;
    adam_options.step = 10;
    if (s.args.empty()) nnxbench::fail(s.where + ": no parameter sizes");
    uint64_t seed = 1;
    for (const std::string& field : s.args) {
      const size_t star = field.find('*');
      const int64_t copies = star == std::string::npos ? 1 : s.integer(field.substr(0, star));
      const int64_t n = s.integer(star == std::string::npos ? field : field.substr(star + 1));
      for (int64_t i = 0; i < copies; ++i) {
        Tensor t;
        t.param = nnxbench::uniform(size_t(n), seed++);
        t.grad = nnxbench::uniform(size_t(n), seed++);
        t.m = nnxbench::uniform(size_t(n), seed++, 0.1f);
        if (adam) {
          t.v = nnxbench::uniform(size_t(n), seed++, 0.01f);
          for (float& x : t.v) x = std::fabs(x);  // a second moment is never negative
        }
        tensors.push_back(std::move(t));
        parameters += n;
      }
    }
  }

  template <class T>
  void update(T* param, T* m, T* v, const T* grad, int64_t n) const {
    if (adam) nnx::adam_step<T>(param, m, v, grad, n, adam_options);
    else nnx::sgd_step<T>(param, m, grad, n, sgd);
  }
  void run() {
    for (Tensor& t : tensors)
      update(t.param.data(), t.m.data(), t.v.data(), t.grad.data(), int64_t(t.param.size()));
  }

  double bytes() const { return (adam ? 28.0 : 20.0) * double(parameters); }
  std::string label() const {
    return std::to_string(tensors.size()) + " tensors, " + std::to_string(parameters) + " parameters";
  }
};

void validate(Step& s, const std::string& what) {
  for (size_t i = 0; i < s.tensors.size(); ++i) {
    Tensor& t = s.tensors[i];
    auto param = nnxbench::widen(t.param), m = nnxbench::widen(t.m), v = nnxbench::widen(t.v);
    const auto grad = nnxbench::widen(t.grad);
    s.update(param.data(), m.data(), v.data(), grad.data(), int64_t(param.size()));
    s.update(t.param.data(), t.m.data(), t.v.data(), t.grad.data(), int64_t(t.param.size()));
    const std::string tensor = what + " tensor " + std::to_string(i);
    nnxbench::check_close(tensor + " parameter", t.param.data(), param.data(), param.size(), 1e-5, 1e-6);
    nnxbench::check_close(tensor + " first state", t.m.data(), m.data(), m.size(), 1e-5, 1e-6);
    nnxbench::check_close(tensor + " second moment", t.v.data(), v.data(), v.size(), 1e-5, 1e-6);
  }
}

int setup() {
  return nnxbench::for_each_shape({"sgd", "adam"}, [](const nnxbench::Shape& s) {
    auto step = std::make_shared<Step>(s);
    validate(*step, s.id() + " (" + step->label() + ")");
    nnxbench::add(s.id() + "/step", step->label(), kBound, step->bytes(), [step] { step->run(); });
    return 1;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return nnxbench::main(argc, argv, "optim", kBound, setup);
}
