// Native loss benchmark (nnx/nn.h) at the loss calls of the shape files: the fused softmax +
// cross-entropy against class indices that all three models train with. Each call is first
// checked against the double-precision reference, forward and backward, then timed; GB/s and %
// of the STREAM-triad bandwidth.
//
//   xent <name> rows cols          rows = samples (positions), cols = classes
//
// Bytes per call: forward logits + probs (saved for backward) + int64 targets + per-row loss;
// backward per-row grad_loss + probs + targets + grad_logits.
#include "common.h"
#include "nnx/nn.h"

namespace {

using nnxbench::Buffer;
constexpr auto kBound = nnxbench::Bound::memory;

struct CrossEntropy {
  int64_t rows, cols;
  Buffer<float> logits, loss, probs, grad_loss, grad;
  Buffer<int64_t> target;

  explicit CrossEntropy(const nnxbench::Shape& s) {
    const auto v = s.numbers(2);
    rows = v[0], cols = v[1];
    logits = nnxbench::uniform(size_t(rows * cols), 1, 4.0f);
    grad_loss = nnxbench::uniform(size_t(rows), 2);
    loss.resize(size_t(rows)), probs.resize(logits.size()), grad.resize(logits.size());
    for (int64_t r = 0; r < rows; ++r) target.push_back(r * 7 % cols);
  }

  template <class T>
  void forward(T* l, T* p, const T* z) const {
    nnx::cross_entropy_forward<T>(l, p, z, target.data(), nullptr, rows, cols);
  }
  template <class T>
  void backward(T* g, const T* gl, const T* p) const {
    nnx::cross_entropy_backward<T>(g, gl, p, target.data(), nullptr, rows, cols);
  }
  void forward() { forward(loss.data(), probs.data(), logits.data()); }
  void backward() { backward(grad.data(), grad_loss.data(), probs.data()); }

  double bytes() const { return 8.0 * double(rows * cols) + 12.0 * double(rows); }  // each way
  std::string label() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};

void validate(CrossEntropy& c, const std::string& what) {
  c.forward();
  c.backward();
  const auto z = nnxbench::widen(c.logits), gl = nnxbench::widen(c.grad_loss);
  Buffer<double> loss(c.loss.size()), probs(c.probs.size()), grad(c.grad.size());
  c.forward(loss.data(), probs.data(), z.data());
  c.backward(grad.data(), gl.data(), probs.data());
  nnxbench::check_close(what + " loss", c.loss.data(), loss.data(), loss.size(), 1e-5, 1e-6);
  nnxbench::check_close(what + " probabilities", c.probs.data(), probs.data(), probs.size(), 1e-5, 1e-6);
  nnxbench::check_close(what + " gradient", c.grad.data(), grad.data(), grad.size(), 1e-5, 1e-6);
}

int setup() {
  return nnxbench::for_each_shape({"xent"}, [](const nnxbench::Shape& s) {
    auto c = std::make_shared<CrossEntropy>(s);
    validate(*c, s.id() + " (" + c->label() + ")");
    nnxbench::add(s.id() + "/fwd", c->label(), kBound, c->bytes(), [c] { c->forward(); });
    nnxbench::add(s.id() + "/bwd", c->label(), kBound, c->bytes(), [c] { c->backward(); });
    return 2;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return nnxbench::main(argc, argv, "loss", kBound, setup);
}
