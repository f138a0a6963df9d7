// The layers of nnx::Model (nnx/model.h): each built from its entry in a model file (type,
// configuration, parameter arrays; the format is in docs/cpp.md) and run in float32 through the
// public kernel APIs. Internal to the runtime, so that nlohmann/json never reaches a public header.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nnx/model.h"

namespace nnx::runtime {

class Layer {
 public:
  virtual ~Layer() = default;
  // std::invalid_argument if x does not fit the layer. Takes x by value: a layer that only
  // reshapes (Flatten) hands the same buffer on.
  virtual Tensor forward(Tensor x) const = 0;
  // E.g. "Conv2d(1 -> 6, kernel 5x5, stride 1x1, padding 2x2)".
  virtual std::string describe() const = 0;
  // Makes the layer apply a ReLU to its output in its own kernel's write-back (Linear, Conv2d);
  // false when it cannot, and the ReLU then stays a layer of its own.
  virtual bool fuse_relu() { return false; }
};

// The parameter `role` (e.g. "weight") of the layer being built, as float32 values, after
// checking that its shape is `shape` (std::runtime_error if it is absent or not that shape).
using ParamReader =
    std::function<std::vector<float>(const std::string& role, const std::vector<int64_t>& shape)>;

#if NNX_MODEL_FILES
}  // namespace nnx::runtime
#include <nlohmann/json.hpp>
namespace nnx::runtime {

// The layer described by `spec`, or null for one that is the identity in inference (Dropout,
// Dropout2d, Identity). std::runtime_error for an unknown type or a missing or malformed field.
std::unique_ptr<Layer> make_layer(const nlohmann::json& spec, const ParamReader& params);
#endif

}  // namespace nnx::runtime
