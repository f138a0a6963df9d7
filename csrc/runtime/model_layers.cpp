// The layers of nnx::Model. Each checks its input's shape (std::invalid_argument, naming what it
// expected), allocates its output and calls one public kernel API, so a model computes exactly
// what the Python modules compute with the same kernels.
#include "model_layers.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "nnx/conv.h"
#include "nnx/gemm.h"
#include "nnx/nn.h"
#include "nnx/norm.h"
#include "nnx/pool.h"
#include "nnx/rnn.h"

namespace nnx::runtime {
namespace {

using json = nlohmann::json;
using Pair = std::array<int64_t, 2>;

// ---- reading a layer's configuration ----------------------------------------------------------

const json& field(const json& spec, const char* key) {
  const auto it = spec.find(key);
  if (it == spec.end()) throw std::runtime_error(std::string("field '") + key + "' is missing");
  return *it;
}

int64_t int_field(const json& spec, const char* key, int64_t min) {
  const json& v = field(spec, key);
  if (!v.is_number_integer() || v.get<int64_t>() < min)
    throw std::runtime_error(std::string("field '") + key + "' must be an integer >= " +
                             std::to_string(min) + ", got " + v.dump());
  return v.get<int64_t>();
}

bool bool_field(const json& spec, const char* key) {
  const json& v = field(spec, key);
  if (!v.is_boolean())
    throw std::runtime_error(std::string("field '") + key + "' must be true or false, got " + v.dump());
  return v.get<bool>();
}

double number_field(const json& spec, const char* key) {
  const json& v = field(spec, key);
  if (!v.is_number())
    throw std::runtime_error(std::string("field '") + key + "' must be a number, got " + v.dump());
  return v.get<double>();
}

// A [height, width] pair; with allow_null, null entries read as -1 ("keep the input's size").
Pair pair_field(const json& spec, const char* key, int64_t min, bool allow_null = false) {
  const json& v = field(spec, key);
  Pair out{};
  bool ok = v.is_array() && v.size() == 2;
  for (size_t i = 0; ok && i < 2; ++i) {
    if (allow_null && v[i].is_null()) out[i] = -1;
    else if (v[i].is_number_integer() && v[i].get<int64_t>() >= min) out[i] = v[i].get<int64_t>();
    else ok = false;
  }
  if (!ok)
    throw std::runtime_error(std::string("field '") + key + "' must be a pair of integers >= " +
                             std::to_string(min) + ", got " + v.dump());
  return out;
}

std::string pair_string(const Pair& p) { return std::to_string(p[0]) + "x" + std::to_string(p[1]); }

// ---- shapes ------------------------------------------------------------------------------------

void require(bool ok, const std::string& expected, const Tensor& x) {
  if (!ok) throw std::invalid_argument("expected input " + expected + ", got " + shape_string(x.shape));
}

// (A, B, C) -> (B, A, C): between the batch-first and the time-major layouts of a sequence.
Tensor swap_leading_axes(const Tensor& x) {
  const int64_t a = x.shape[0], b = x.shape[1], c = x.shape[2];
  Tensor y({b, a, c});
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      std::copy_n(&x.data[size_t((i * b + j) * c)], c, &y.data[size_t((j * a + i) * c)]);
  return y;
}

int64_t trailing_size(const Tensor& x, size_t from) {
  int64_t m = 1;
  for (size_t i = from; i < x.shape.size(); ++i) m *= x.shape[i];
  return m;
}

// ---- layers ------------------------------------------------------------------------------------

class Linear : public Layer {
 public:
  Linear(const json& spec, const ParamReader& params)
      : in_(int_field(spec, "in_features", 1)), out_(int_field(spec, "out_features", 1)),
        weight_(params("weight", {out_, in_})) {
    if (bool_field(spec, "bias")) bias_ = params("bias", {out_});
  }
  Tensor forward(Tensor x) const override {
    require(x.dim() >= 1 && x.shape.back() == in_, "(..., " + std::to_string(in_) + ")", x);
    std::vector<int64_t> shape = x.shape;
    shape.back() = out_;
    Tensor y(shape);
    const int64_t rows = x.numel() / in_;
    if (rows == 0) return y;
    GemmEpilogue epilogue;
    epilogue.relu = relu_;
    if (!bias_.empty()) epilogue.bias = bias_.data(), epilogue.bias_mode = BiasMode::col;
    sgemm(Trans::N, Trans::T, rows, out_, in_, 1.0f, x.data.data(), in_, weight_.data(), in_, 0.0f,
          y.data.data(), out_, epilogue);
    return y;
  }
  std::string describe() const override {
    return "Linear(" + std::to_string(in_) + " -> " + std::to_string(out_) +
           (bias_.empty() ? ", no bias)" : ")") + (relu_ ? " + ReLU" : "");
  }
  bool fuse_relu() override { return relu_ = true; }

 private:
  int64_t in_, out_;
  std::vector<float> weight_, bias_;
  bool relu_ = false;
};

class Conv2d : public Layer {
 public:
  Conv2d(const json& spec, const ParamReader& params) {
    const Pair kernel = pair_field(spec, "kernel_size", 1), stride = pair_field(spec, "stride", 1),
               pad = pair_field(spec, "padding", 0), dil = pair_field(spec, "dilation", 1);
    s_.in_channels = int_field(spec, "in_channels", 1);
    s_.out_channels = int_field(spec, "out_channels", 1);
    s_.kernel_h = kernel[0], s_.kernel_w = kernel[1], s_.stride_h = stride[0], s_.stride_w = stride[1];
    s_.pad_h = pad[0], s_.pad_w = pad[1], s_.dilation_h = dil[0], s_.dilation_w = dil[1];
    weight_ = params("weight", {s_.out_channels, s_.in_channels, s_.kernel_h, s_.kernel_w});
    if (bool_field(spec, "bias")) bias_ = params("bias", {s_.out_channels});
  }
  Tensor forward(Tensor x) const override {
    require(x.dim() == 4 && x.shape[1] == s_.in_channels,
            "(N, " + std::to_string(s_.in_channels) + ", H, W)", x);
    Conv2dShape s = s_;
    s.batch = x.shape[0], s.height = x.shape[2], s.width = x.shape[3];
    check_conv2d_shape(s);
    Tensor y({s.batch, s.out_channels, s.out_height(), s.out_width()});
    conv2d_forward<float>(y.data.data(), x.data.data(), weight_.data(),
                          bias_.empty() ? nullptr : bias_.data(), s, relu_);
    return y;
  }
  std::string describe() const override {
    return "Conv2d(" + std::to_string(s_.in_channels) + " -> " + std::to_string(s_.out_channels) +
           ", kernel " + pair_string({s_.kernel_h, s_.kernel_w}) + ", stride " +
           pair_string({s_.stride_h, s_.stride_w}) + ", padding " + pair_string({s_.pad_h, s_.pad_w}) +
           (s_.dilation_h * s_.dilation_w != 1
                ? ", dilation " + pair_string({s_.dilation_h, s_.dilation_w}) : "") +
           (bias_.empty() ? ", no bias)" : ")") + (relu_ ? " + ReLU" : "");
  }
  bool fuse_relu() override { return relu_ = true; }

 private:
  Conv2dShape s_;
  std::vector<float> weight_, bias_;
  bool relu_ = false;
};

class Pool2d : public Layer {
 public:
  Pool2d(const json& spec, bool max)
      : max_(max), kernel_(pair_field(spec, "kernel_size", 1)), stride_(pair_field(spec, "stride", 1)),
        pad_(pair_field(spec, "padding", 0)),
        count_include_pad_(max ? true : bool_field(spec, "count_include_pad")) {}
  Tensor forward(Tensor x) const override {
    require(x.dim() == 4, "(N, C, H, W)", x);
    const Pool2dShape s{x.shape[0] * x.shape[1], x.shape[2], x.shape[3], kernel_[0], kernel_[1],
                        stride_[0], stride_[1], pad_[0], pad_[1]};
    check_pool2d_shape(s);
    Tensor y({x.shape[0], x.shape[1], s.out_height(), s.out_width()});
    if (max_) {
      std::vector<int64_t> indices(y.data.size());  // the kernel's argmax output, unused here
      max_pool2d_forward<float>(y.data.data(), indices.data(), x.data.data(), s);
    } else {
      avg_pool2d_forward<float>(y.data.data(), x.data.data(), s, count_include_pad_);
    }
    return y;
  }
  std::string describe() const override {
    return std::string(max_ ? "MaxPool2d" : "AvgPool2d") + "(kernel " + pair_string(kernel_) +
           ", stride " + pair_string(stride_) + ", padding " + pair_string(pad_) + ")";
  }

 private:
  bool max_;
  Pair kernel_, stride_, pad_;
  bool count_include_pad_;
};

class AdaptiveAvgPool2d : public Layer {
 public:
  explicit AdaptiveAvgPool2d(const json& spec) : size_(pair_field(spec, "output_size", 1, true)) {}
  Tensor forward(Tensor x) const override {
    require(x.dim() == 4, "(N, C, H, W)", x);
    const int64_t h = x.shape[2], w = x.shape[3];
    const int64_t p = size_[0] < 0 ? h : size_[0], q = size_[1] < 0 ? w : size_[1];
    Tensor y({x.shape[0], x.shape[1], p, q});
    adaptive_avg_pool2d_forward<float>(y.data.data(), x.data.data(), x.shape[0] * x.shape[1], h, w,
                                       p, q);
    return y;
  }
  std::string describe() const override {
    const auto size = [](int64_t s) { return s < 0 ? std::string("input") : std::to_string(s); };
    return "AdaptiveAvgPool2d(" + size(size_[0]) + "x" + size(size_[1]) + ")";
  }

 private:
  Pair size_;
};

// Eval mode: the running statistics normalise, as the Python module does after model.eval().
class BatchNorm : public Layer {
 public:
  BatchNorm(const json& spec, const ParamReader& params, bool two_d)
      : two_d_(two_d), channels_(int_field(spec, "num_features", 1)),
        eps_(float(number_field(spec, "eps"))), mean_(params("running_mean", {channels_})),
        var_(params("running_var", {channels_})) {
    if (bool_field(spec, "affine")) weight_ = params("weight", {channels_});
    if (bool_field(spec, "affine") && bool_field(spec, "bias")) bias_ = params("bias", {channels_});
  }
  Tensor forward(Tensor x) const override {
    const std::string c = std::to_string(channels_);
    if (two_d_) require(x.dim() == 4 && x.shape[1] == channels_, "(N, " + c + ", H, W)", x);
    else require((x.dim() == 2 || x.dim() == 3) && x.shape[1] == channels_,
                 "(N, " + c + ") or (N, " + c + ", L)", x);
    Tensor y(x.shape);
    if (y.numel() == 0) return y;
    batch_norm_forward_eval<float>(y.data.data(), x.data.data(), mean_.data(), var_.data(),
                                   weight_.empty() ? nullptr : weight_.data(),
                                   bias_.empty() ? nullptr : bias_.data(), x.shape[0], channels_,
                                   trailing_size(x, 2), eps_);
    return y;
  }
  std::string describe() const override {
    return std::string(two_d_ ? "BatchNorm2d(" : "BatchNorm1d(") + std::to_string(channels_) +
           ", eps " + std::to_string(eps_) + ")";
  }

 private:
  bool two_d_;
  int64_t channels_;
  float eps_;
  std::vector<float> mean_, var_, weight_, bias_;
};

class Flatten : public Layer {
 public:
  explicit Flatten(const json& spec)
      : start_(int_field(spec, "start_dim", INT64_MIN)), end_(int_field(spec, "end_dim", INT64_MIN)) {}
  Tensor forward(Tensor x) const override {
    const int64_t n = x.dim(), s = start_ < 0 ? start_ + n : start_, e = end_ < 0 ? end_ + n : end_;
    if (s < 0 || e >= n || s > e)
      throw std::invalid_argument("dimensions " + std::to_string(start_) + " to " +
                                  std::to_string(end_) + " do not fit an input of shape " +
                                  shape_string(x.shape));
    std::vector<int64_t> shape(x.shape.begin(), x.shape.begin() + s);
    int64_t merged = 1;
    for (int64_t i = s; i <= e; ++i) merged *= x.shape[size_t(i)];
    shape.push_back(merged);
    shape.insert(shape.end(), x.shape.begin() + e + 1, x.shape.end());
    x.shape = std::move(shape);
    return x;
  }
  std::string describe() const override {
    return "Flatten(" + std::to_string(start_) + ", " + std::to_string(end_) + ")";
  }

 private:
  int64_t start_, end_;
};

class Elementwise : public Layer {
 public:
  Elementwise(std::string type, Activation act, float alpha)
      : type_(std::move(type)), act_(act), alpha_(alpha) {}
  Tensor forward(Tensor x) const override {
    Tensor y(x.shape);
    activation_forward<float>(act_, y.data.data(), x.data.data(), x.numel(), alpha_);
    return y;
  }
  std::string describe() const override { return type_; }

 private:
  std::string type_;
  Activation act_;
  float alpha_;
};

// Softmax or log-softmax along the last axis, the only one the kernel supports (and the class
// axis of logits, where a model ends).
class Softmax : public Layer {
 public:
  Softmax(const json& spec, bool log) : dim_(int_field(spec, "dim", INT64_MIN)), log_(log) {}
  Tensor forward(Tensor x) const override {
    if (x.dim() == 0 || (dim_ != -1 && dim_ != x.dim() - 1))
      throw std::invalid_argument("softmax along dim " + std::to_string(dim_) +
                                  ": only the last axis is supported, input shape " +
                                  shape_string(x.shape));
    Tensor y(x.shape);
    const int64_t cols = x.shape.back();
    if (cols > 0) softmax_forward<float>(y.data.data(), x.data.data(), x.numel() / cols, cols, log_);
    return y;
  }
  std::string describe() const override { return log_ ? "LogSoftmax(dim -1)" : "Softmax(dim -1)"; }

 private:
  int64_t dim_;
  bool log_;
};

// A stack of unidirectional LSTM layers; its output is the last layer's output sequence (the
// final states are not returned), (T, B, H), or (B, T, H) with batch_first, or (T, H) for one
// unbatched sequence (T, I).
class Lstm : public Layer {
 public:
  Lstm(const json& spec, const ParamReader& params)
      : input_(int_field(spec, "input_size", 1)), hidden_(int_field(spec, "hidden_size", 1)),
        batch_first_(bool_field(spec, "batch_first")) {
    const int64_t layers = int_field(spec, "num_layers", 1), gates = 4 * hidden_;
    const bool bias = bool_field(spec, "bias");
    for (int64_t l = 0; l < layers; ++l) {
      const std::string k = std::to_string(l);
      Weights w;
      w.ih = params("weight_ih_l" + k, {gates, l == 0 ? input_ : hidden_});
      w.hh = params("weight_hh_l" + k, {gates, hidden_});
      if (bias) w.b_ih = params("bias_ih_l" + k, {gates}), w.b_hh = params("bias_hh_l" + k, {gates});
      layers_.push_back(std::move(w));
    }
  }
  Tensor forward(Tensor x) const override {
    const std::string i = std::to_string(input_);
    require((x.dim() == 2 || x.dim() == 3) && x.shape.back() == input_,
            (batch_first_ ? "(B, T, " : "(T, B, ") + i + ") or (T, " + i + ")", x);
    const bool batched = x.dim() == 3, swap = batched && batch_first_;
    if (swap) x = swap_leading_axes(x);
    const int64_t steps = x.shape[0], batch = batched ? x.shape[1] : 1;
    int64_t features = input_;
    for (const Weights& w : layers_) {
      Tensor y({steps, batch, hidden_});
      const float* b_ih = w.b_ih.empty() ? nullptr : w.b_ih.data();
      const float* b_hh = w.b_hh.empty() ? nullptr : w.b_hh.data();
      lstm_forward<float>(RnnShape{steps, batch, features, hidden_}, x.data.data(), w.ih.data(),
                          w.hh.data(), b_ih, b_hh, nullptr, nullptr, y.data.data(), nullptr,
                          nullptr, nullptr);
      x = std::move(y);
      features = hidden_;
    }
    if (swap) return swap_leading_axes(x);
    if (!batched) x.shape = {steps, hidden_};
    return x;
  }
  std::string describe() const override {
    return "LSTM(" + std::to_string(input_) + " -> " + std::to_string(hidden_) + ", " +
           std::to_string(layers_.size()) + (layers_.size() == 1 ? " layer" : " layers") +
           (batch_first_ ? ", batch first)" : ")");
  }

 private:
  struct Weights {
    std::vector<float> ih, hh, b_ih, b_hh;
  };
  int64_t input_, hidden_;
  bool batch_first_;
  std::vector<Weights> layers_;
};

}  // namespace

std::unique_ptr<Layer> make_layer(const json& spec, const ParamReader& params) {
  const json& type_field = field(spec, "type");
  if (!type_field.is_string()) throw std::runtime_error("field 'type' must be a string");
  const std::string type = type_field.get<std::string>();
  const auto act = [&](Activation a, float alpha = 0) {
    return std::make_unique<Elementwise>(type, a, alpha);
  };
  if (type == "Linear") return std::make_unique<Linear>(spec, params);
  if (type == "Conv2d") return std::make_unique<Conv2d>(spec, params);
  if (type == "MaxPool2d") return std::make_unique<Pool2d>(spec, true);
  if (type == "AvgPool2d") return std::make_unique<Pool2d>(spec, false);
  if (type == "AdaptiveAvgPool2d") return std::make_unique<AdaptiveAvgPool2d>(spec);
  if (type == "BatchNorm1d") return std::make_unique<BatchNorm>(spec, params, false);
  if (type == "BatchNorm2d") return std::make_unique<BatchNorm>(spec, params, true);
  if (type == "Flatten") return std::make_unique<Flatten>(spec);
  if (type == "LSTM") return std::make_unique<Lstm>(spec, params);
  if (type == "ReLU") return act(Activation::relu);
  if (type == "Sigmoid") return act(Activation::sigmoid);
  if (type == "Tanh") return act(Activation::tanh);
  if (type == "Softplus") return act(Activation::softplus);
  if (type == "Hardsigmoid") return act(Activation::hardsigmoid);
  if (type == "LeakyReLU") return act(Activation::leaky_relu, float(number_field(spec, "negative_slope")));
  if (type == "ELU") return act(Activation::elu, float(number_field(spec, "alpha")));
  if (type == "Softmax") return std::make_unique<Softmax>(spec, false);
  if (type == "LogSoftmax") return std::make_unique<Softmax>(spec, true);
  if (type == "Dropout" || type == "Dropout2d" || type == "Identity") return nullptr;
  throw std::runtime_error(
      "unknown layer type '" + type + "'; the C++ runtime runs Linear, Conv2d, MaxPool2d, "
      "AvgPool2d, AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, Flatten, LSTM, ReLU, Sigmoid, Tanh, "
      "Softplus, Hardsigmoid, LeakyReLU, ELU, Softmax, LogSoftmax, Dropout, Dropout2d and Identity");
}

}  // namespace nnx::runtime
