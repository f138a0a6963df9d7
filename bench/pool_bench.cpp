// Native pooling benchmark (nnx/pool.h) at the pooling layers of the shape files. Each layer is
// first checked against the double-precision reference, forward and backward, then timed; GB/s
// and % of the STREAM-triad bandwidth (pooling does a few operations per value it moves).
//
//   maxpool <name> N C H W kernel stride pad       square window, e.g. 2 2 0 or 3 2 1
//   avgpool <name> N C H W kernel stride pad       count_include_pad, as nn.AvgPool2d
//   adaptivepool <name> N C H W out_h out_w        nn.AdaptiveAvgPool2d
//
// Bytes per call: every array the call reads or writes, once: max forward x + y + the int64
// indices; max backward grad_y + indices + grad_x; average pools input + output.
#include "common.h"
#include "nnx/pool.h"

namespace {

using nnxbench::Buffer;
constexpr auto kBound = nnxbench::Bound::memory;

enum class Kind { max, avg, adaptive };

struct Pool {
  Kind kind;
  nnx::Pool2dShape shape;  // for adaptive: planes, height, width only
  int64_t out_h = 1, out_w = 1;
  Buffer<float> x, y, gy, gx;
  Buffer<int64_t> indices;

  explicit Pool(const nnxbench::Shape& s) {
    kind = s.kind == "maxpool" ? Kind::max : s.kind == "avgpool" ? Kind::avg : Kind::adaptive;
    const auto v = s.numbers(kind == Kind::adaptive ? 6 : 7);
    shape.planes = v[0] * v[1], shape.height = v[2], shape.width = v[3];
    if (kind == Kind::adaptive) {
      out_h = v[4], out_w = v[5];
    } else {
      shape.kernel_h = shape.kernel_w = v[4];
      shape.stride_h = shape.stride_w = v[5];
      shape.pad_h = shape.pad_w = v[6];
      nnx::check_pool2d_shape(shape);
      out_h = shape.out_height(), out_w = shape.out_width();
    }
    x = nnxbench::uniform(in_size(), 1);
    gy = nnxbench::uniform(out_size(), 2);
    y.resize(out_size()), gx.resize(in_size());
    if (kind == Kind::max) indices.resize(out_size());
  }
  size_t in_size() const { return size_t(shape.planes * shape.height * shape.width); }
  size_t out_size() const { return size_t(shape.planes * out_h * out_w); }
  double forward_bytes() const {
    return 4.0 * double(in_size()) + (kind == Kind::max ? 12.0 : 4.0) * double(out_size());
  }
  double backward_bytes() const { return forward_bytes(); }  // the same arrays, the other way

  template <class T>
  void forward(T* out, int64_t* idx, const T* in) const {
    if (kind == Kind::max) nnx::max_pool2d_forward(out, idx, in, shape);
    else if (kind == Kind::avg) nnx::avg_pool2d_forward(out, in, shape, true);
    else nnx::adaptive_avg_pool2d_forward(out, in, shape.planes, shape.height, shape.width, out_h, out_w);
  }
  template <class T>
  void backward(T* grad_in, const T* grad_out, const int64_t* idx) const {
    const int64_t planes = shape.planes, h = shape.height, w = shape.width;
    if (kind == Kind::max)
      nnx::max_pool2d_backward(grad_in, grad_out, idx, planes, h, w, out_h, out_w);
    else if (kind == Kind::avg)
      nnx::avg_pool2d_backward(grad_in, grad_out, shape, true);
    else
      nnx::adaptive_avg_pool2d_backward(grad_in, grad_out, planes, h, w, out_h, out_w);
  }
  void forward() { forward(y.data(), indices.data(), x.data()); }
  void backward() { backward(gx.data(), gy.data(), indices.data()); }

  std::string label() const {
    std::string l = std::to_string(shape.planes) + " planes " + std::to_string(shape.height) + "x" +
                    std::to_string(shape.width);
    if (kind == Kind::adaptive) return l + " -> " + std::to_string(out_h) + "x" + std::to_string(out_w);
    return l + " k" + std::to_string(shape.kernel_h) + " s" + std::to_string(shape.stride_h) + " p" +
           std::to_string(shape.pad_h);
  }
};

// A maximum is exact, so max pooling must match the reference bit for bit (values and indices);
// averages and the scatter-adds of overlapping windows get a few ulps.
void validate(Pool& p, const std::string& what) {
  p.forward();
  p.backward();
  const auto x = nnxbench::widen(p.x), gy = nnxbench::widen(p.gy);
  Buffer<double> y(p.y.size()), gx(p.gx.size());
  Buffer<int64_t> indices(p.indices.size());
  p.forward(y.data(), indices.data(), x.data());
  p.backward(gx.data(), gy.data(), indices.data());
  if (p.kind == Kind::max) {
    const Buffer<double> got(p.y.begin(), p.y.end());
    nnxbench::check_equal(what + " forward", got.data(), y.data(), y.size());
    nnxbench::check_equal(what + " indices", p.indices.data(), indices.data(), indices.size());
  } else {
    nnxbench::check_close(what + " forward", p.y.data(), y.data(), y.size(), 1e-5, 1e-6);
  }
  nnxbench::check_close(what + " backward", p.gx.data(), gx.data(), gx.size(), 1e-5, 1e-6);
}

int setup() {
  return nnxbench::for_each_shape({"maxpool", "avgpool", "adaptivepool"}, [](const nnxbench::Shape& s) {
    auto p = std::make_shared<Pool>(s);
    validate(*p, s.id() + " (" + p->label() + ")");
    nnxbench::add(s.id() + "/fwd", p->label(), kBound, p->forward_bytes(), [p] { p->forward(); });
    nnxbench::add(s.id() + "/bwd", p->label(), kBound, p->backward_bytes(), [p] { p->backward(); });
    return 2;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return nnxbench::main(argc, argv, "pool", kBound, setup);
}
