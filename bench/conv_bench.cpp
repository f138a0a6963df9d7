// Native convolution benchmark (nnx::conv2d_forward / conv2d_backward, float: im2col + the SIMD
// GEMM) at the convolution layers of the shape files. Each layer is first checked against the
// double-precision direct convolution, forward and backward, then timed; GFLOP/s and % of the
// measured FMA peak.
//
//   conv <name> N C H W K R S stride pad [bias] [relu] [first]
//     x (N, C, H, W), w (K, C, R, S), same stride and padding in both directions;
//     bias: the layer has a bias (forward adds it, backward computes its gradient);
//     relu: a ReLU fused into the forward, as nnx does for Conv2d + ReLU;
//     first: the layer reads the data, so training needs no input gradient.
//
// FLOPs are the convolution's own, 2 N K P Q C R S per forward and as much per backward product
// (input gradient, weight gradient), not the padded columns the implementation computes.
#include "common.h"
#include "nnx/conv.h"

namespace {

using nnxbench::Buffer;
constexpr auto kBound = nnxbench::Bound::compute;

struct Conv {
  nnx::Conv2dShape shape;
  bool relu = false, input_grad = true;
  Buffer<float> x, w, b, y, gy, gx, gw, gb;  // b and gb are empty without a bias

  explicit Conv(const nnxbench::Shape& s) {
    const auto v = s.numbers(9, {"bias", "relu", "first"});
    shape.batch = v[0], shape.in_channels = v[1], shape.height = v[2], shape.width = v[3];
    shape.out_channels = v[4], shape.kernel_h = v[5], shape.kernel_w = v[6];
    shape.stride_h = shape.stride_w = v[7];
    shape.pad_h = shape.pad_w = v[8];
    nnx::check_conv2d_shape(shape);
    relu = s.has("relu");
    input_grad = !s.has("first");
    x = nnxbench::uniform(x_size(), 1);
    w = nnxbench::uniform(w_size(), 2, 0.2f);
    gy = nnxbench::uniform(y_size(), 3);
    y.resize(y_size()), gw.resize(w_size());
    if (input_grad) gx.resize(x_size());
    if (s.has("bias")) {
      b = nnxbench::uniform(size_t(shape.out_channels), 4);
      gb.resize(b.size());
    }
  }
  size_t x_size() const {
    return size_t(shape.batch * shape.in_channels * shape.height * shape.width);
  }
  size_t w_size() const {
    return size_t(shape.out_channels * shape.in_channels * shape.kernel_h * shape.kernel_w);
  }
  size_t y_size() const {
    return size_t(shape.batch * shape.out_channels * shape.out_height() * shape.out_width());
  }
  double macs() const {
    return double(y_size()) * double(shape.in_channels * shape.kernel_h * shape.kernel_w);
  }

  template <class T>
  static T* opt(Buffer<T>& v) { return v.empty() ? nullptr : v.data(); }
  template <class T>
  static const T* opt(const Buffer<T>& v) { return v.empty() ? nullptr : v.data(); }

  void forward() { nnx::conv2d_forward(y.data(), x.data(), w.data(), opt(b), shape, relu); }
  void backward() {
    nnx::conv2d_backward(opt(gx), gw.data(), opt(gb), gy.data(), x.data(), w.data(), shape);
  }

  std::string label() const {
    const auto& s = shape;
    return std::to_string(s.batch) + "x" + std::to_string(s.in_channels) + "x" +
           std::to_string(s.height) + "x" + std::to_string(s.width) + " k" +
           std::to_string(s.out_channels) + " " + std::to_string(s.kernel_h) + "x" +
           std::to_string(s.kernel_w) + " s" + std::to_string(s.stride_h) + " p" +
           std::to_string(s.pad_h) + (b.empty() ? "" : " +bias") + (relu ? " +relu" : "");
  }
};

void validate(Conv& c, const std::string& what) {
  c.forward();
  c.backward();
  const auto x = nnxbench::widen(c.x), w = nnxbench::widen(c.w), b = nnxbench::widen(c.b),
             gy = nnxbench::widen(c.gy);
  Buffer<double> y(c.y.size()), gx(c.gx.size()), gw(c.gw.size()), gb(c.gb.size());
  nnx::conv2d_forward(y.data(), x.data(), w.data(), Conv::opt(b), c.shape, c.relu);
  nnx::conv2d_backward(Conv::opt(gx), gw.data(), Conv::opt(gb), gy.data(), x.data(), w.data(), c.shape);
  nnxbench::check_near(what + " forward", c.y.data(), y.data(), y.size());
  nnxbench::check_near(what + " input gradient", c.gx.data(), gx.data(), gx.size());
  nnxbench::check_near(what + " weight gradient", c.gw.data(), gw.data(), gw.size());
  nnxbench::check_near(what + " bias gradient", c.gb.data(), gb.data(), gb.size());
}

int setup() {
  return nnxbench::for_each_shape({"conv"}, [](const nnxbench::Shape& s) {
    auto c = std::make_shared<Conv>(s);
    validate(*c, s.id() + " (" + c->label() + ")");
    const std::string bwd_label = c->label() + (c->input_grad ? "" : " (no input gradient)");
    nnxbench::add(s.id() + "/fwd", c->label(), kBound, 2 * c->macs(), [c] { c->forward(); });
    nnxbench::add(s.id() + "/bwd", bwd_label, kBound, (c->input_grad ? 4 : 2) * c->macs(),
                  [c] { c->backward(); });
    return 2;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return nnxbench::main(argc, argv, "conv", kBound, setup);
}
