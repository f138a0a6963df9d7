// Native LSTM benchmark (nnx::lstm_forward / lstm_backward, one layer over a whole sequence) at
// the LSTM calls of the shape files. Each call is first checked against the double-precision
// reference, then timed; GFLOP/s and % of the measured FMA peak.
//
//   lstm <name> I H T B [infer]
//     input size I, hidden size H, T steps, batch B; infer: generation, forward only and nothing
//     saved for a backward; otherwise training: forward saving its state, then backpropagation
//     through time with the gradients truncated BPTT asks for (input, weights, bias; the
//     carried-over state is detached, so no gradient for h0, c0 and none arrives at h_n, c_n).
//
// FLOPs are the GEMMs' only, which dominate (the gate nonlinearities add about 1%): forward
// 2 T B 4H (I + H); backward twice that (input gradient and the recurrent product through W_hh,
// then the two weight gradients).
#include "common.h"
#include "nnx/rnn.h"

namespace {

using nnxbench::Buffer;
constexpr auto kBound = nnxbench::Bound::compute;

struct Lstm {
  nnx::RnnShape shape;
  bool train = true;
  Buffer<float> x, w_ih, w_hh, b_ih, b_hh, h0, c0, y, h_n, c_n, saved;
  Buffer<float> gy, gx, gw_ih, gw_hh, gb;

  explicit Lstm(const nnxbench::Shape& s) {
    const auto v = s.numbers(4, {"infer"});
    shape = {v[2], v[3], v[0], v[1]};  // steps, batch, input, hidden
    train = !s.has("infer");
    const int64_t T = shape.steps, B = shape.batch, I = shape.input, H = shape.hidden;
    const float scale = 1.0f / std::sqrt(float(H));  // PyTorch's initialisation range
    x = nnxbench::uniform(size_t(T * B * I), 1);
    w_ih = nnxbench::uniform(size_t(4 * H * I), 2, scale);
    w_hh = nnxbench::uniform(size_t(4 * H * H), 3, scale);
    b_ih = nnxbench::uniform(size_t(4 * H), 4, scale);
    b_hh = nnxbench::uniform(size_t(4 * H), 5, scale);
    h0 = nnxbench::uniform(size_t(B * H), 6, 0.5f);
    c0 = nnxbench::uniform(size_t(B * H), 7, 0.5f);
    y.resize(size_t(T * B * H)), h_n.resize(h0.size()), c_n.resize(c0.size());
    if (train) {
      saved.resize(nnx::lstm_saved_size(shape));
      gy = nnxbench::uniform(y.size(), 8);
      gx.resize(x.size()), gw_ih.resize(w_ih.size()), gw_hh.resize(w_hh.size()), gb.resize(b_ih.size());
    }
  }

  void forward() {
    nnx::lstm_forward<float>(shape, x.data(), w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(),
                             h0.data(), c0.data(), y.data(), h_n.data(), c_n.data(),
                             train ? saved.data() : nullptr);
  }
  void backward() {
    nnx::lstm_backward<float>(shape, gy.data(), nullptr, nullptr, x.data(), w_ih.data(), w_hh.data(),
                              saved.data(), gx.data(), gw_ih.data(), gw_hh.data(), gb.data(),
                              nullptr, nullptr);
  }

  double forward_flops() const {
    return 2.0 * double(shape.steps * shape.batch) * double(4 * shape.hidden) *
           double(shape.input + shape.hidden);
  }
  std::string label() const {
    return "I" + std::to_string(shape.input) + " H" + std::to_string(shape.hidden) + " T" +
           std::to_string(shape.steps) + " B" + std::to_string(shape.batch);
  }
};

void check(const std::string& what, const Buffer<float>& got, const Buffer<double>& want) {
  nnxbench::check_near(what, got.data(), want.data(), want.size());
}

void validate(Lstm& l, const std::string& what) {
  using nnxbench::widen;
  l.forward();
  if (l.train) l.backward();
  const auto x = widen(l.x), w_ih = widen(l.w_ih), w_hh = widen(l.w_hh), b_ih = widen(l.b_ih),
             b_hh = widen(l.b_hh), h0 = widen(l.h0), c0 = widen(l.c0), gy = widen(l.gy);
  Buffer<double> y(l.y.size()), h_n(l.h_n.size()), c_n(l.c_n.size());
  Buffer<double> saved(l.train ? nnx::lstm_saved_size(l.shape) : 0);
  nnx::lstm_forward<double>(l.shape, x.data(), w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(),
                            h0.data(), c0.data(), y.data(), h_n.data(), c_n.data(),
                            l.train ? saved.data() : nullptr);
  check(what + " output", l.y, y);
  check(what + " h_n", l.h_n, h_n);
  check(what + " c_n", l.c_n, c_n);
  if (!l.train) return;
  Buffer<double> gx(x.size()), gw_ih(w_ih.size()), gw_hh(w_hh.size()), gb(b_ih.size());
  nnx::lstm_backward<double>(l.shape, gy.data(), nullptr, nullptr, x.data(), w_ih.data(),
                             w_hh.data(), saved.data(), gx.data(), gw_ih.data(), gw_hh.data(),
                             gb.data(), nullptr, nullptr);
  check(what + " input gradient", l.gx, gx);
  check(what + " w_ih gradient", l.gw_ih, gw_ih);
  check(what + " w_hh gradient", l.gw_hh, gw_hh);
  check(what + " bias gradient", l.gb, gb);
}

int setup() {
  return nnxbench::for_each_shape({"lstm"}, [](const nnxbench::Shape& s) {
    auto l = std::make_shared<Lstm>(s);
    validate(*l, s.id() + " (" + l->label() + ")");
    const double fwd = l->forward_flops();
    nnxbench::add(s.id() + "/fwd", l->label(), kBound, fwd, [l] { l->forward(); });
    if (!l->train) return 1;
    nnxbench::add(s.id() + "/bwd", l->label(), kBound, 2 * fwd, [l] { l->backward(); });
    return 2;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return nnxbench::main(argc, argv, "lstm", kBound, setup);
}
