// Public C++ API of nnx's model runtime: loads a model file written by the Python side
// (`nnx.save_model`: the layers of a Sequential and their weights, in an nnx checkpoint) and runs
// inference in float32 through the same kernels as Python. docs/cpp.md lists the layers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nnx {

// A dense, row-major float32 array: what a Model takes and returns.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;  // numel() values

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape);  // zeros
  // std::invalid_argument if data does not hold exactly product(shape) values.
  Tensor(std::vector<int64_t> shape, std::vector<float> data);

  int64_t numel() const;
  int64_t dim() const { return static_cast<int64_t>(shape.size()); }
};

// "(64, 1, 28, 28)": for messages.
std::string shape_string(const std::vector<int64_t>& shape);

// A Sequential model loaded from a file. Immutable once loaded: forward() is const and may run on
// several threads at once. Copies share the weights.
class Model {
 public:
  // Reads a model file written by nnx.save_model. std::runtime_error, naming the file and, where
  // it applies, the layer, if the file is missing or unreadable, is not an nnx model file (e.g. a
  // plain state dict written by nnx.save), names an unknown layer type, or holds a parameter of
  // the wrong shape.
  static Model load(const std::string& path);

  // Runs the layers in order on a batch (the first axis), as the Python model does in eval mode:
  // e.g. images (N, 1, 28, 28) to logits (N, 10). std::invalid_argument naming the layer if the
  // input does not fit it.
  Tensor forward(const Tensor& input) const;

  size_t num_layers() const;
  // One line per layer, e.g. "0 conv1: Conv2d(1 -> 6, kernel 5x5, stride 1x1, padding 2x2) + ReLU"
  // (a ReLU after a Linear or Conv2d runs fused in its kernel).
  std::string summary() const;
  // The `metadata` given to nnx.save_model (e.g. the input normalisation); numbers and booleans
  // as their JSON text ("0.1307", "true"), strings as they are.
  const std::map<std::string, std::string>& metadata() const;

 private:
  struct Impl;
  explicit Model(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace nnx
