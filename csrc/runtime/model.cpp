// nnx::Model: reads a model file (an nnx checkpoint whose root is {"format": "nnx-model",
// "layers": [...], "state_dict": {...}, "metadata": {...}}, written by nnx.save_model; the format
// is in docs/cpp.md) into a list of layers, and runs them.
#include "nnx/model.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "model_layers.h"
#include "npz.h"

#if NNX_MODEL_FILES
#include <nlohmann/json.hpp>
#endif

namespace nnx {

// ---- Tensor ------------------------------------------------------------------------------------

namespace {

int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("Tensor: negative size in shape " + shape_string(shape));
    if (d != 0 && n > INT64_MAX / d)
      throw std::invalid_argument("Tensor: shape " + shape_string(shape) + " is too large");
    n *= d;
  }
  return n;
}

}  // namespace

Tensor::Tensor(std::vector<int64_t> s) : shape(std::move(s)), data(size_t(checked_numel(shape))) {}

Tensor::Tensor(std::vector<int64_t> s, std::vector<float> values)
    : shape(std::move(s)), data(std::move(values)) {
  if (checked_numel(shape) != int64_t(data.size()))
    throw std::invalid_argument("Tensor: shape " + shape_string(shape) + " needs " +
                                std::to_string(checked_numel(shape)) + " values, got " +
                                std::to_string(data.size()));
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// ---- Model ---------------------------------------------------------------------------------------

struct Model::Impl {
  std::vector<std::unique_ptr<runtime::Layer>> layers;
  std::vector<std::string> names;  // the Sequential's name of each layer, for messages
  std::map<std::string, std::string> metadata;
};

#if NNX_MODEL_FILES
using json = nlohmann::json;

namespace {

constexpr const char* kMetaEntry = "nnx.json";  // as python/nnx/io.py writes it

// The string at `key` of a JSON object, or "" when absent or not a string.
std::string string_at(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The root object of the checkpoint `archive`: checks the envelope that nnx.save writes around it.
json read_root(const runtime::NpzArchive& archive) {
  const std::string& path = archive.path();
  if (!archive.contains(kMetaEntry))
    throw std::runtime_error(path + ": a zip archive but not an nnx checkpoint (no nnx.json entry)");
  json meta;
  try {
    meta = json::parse(archive.read(kMetaEntry));
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": nnx.json is not valid JSON (" + e.what() + ")");
  }
  if (!meta.is_object() || string_at(meta, "format") != "nnx-checkpoint")
    throw std::runtime_error(path + ": not an nnx checkpoint (nnx.json has no format "
                             "\"nnx-checkpoint\")");
  if (meta.value("version", json()) != 1)
    throw std::runtime_error(path + ": checkpoint version " + meta.value("version", json()).dump() +
                             "; this nnx reads version 1");
  json root = meta.value("root", json());
  if (!root.is_object() || string_at(root, "format") != "nnx-model")
    throw std::runtime_error(path + ": an nnx checkpoint without a model architecture (written by "
                             "nnx.save, e.g. a state dict); save the model with "
                             "nnx.save_model(model, path) to run it from C++");
  if (root.value("version", json()) != 1)
    throw std::runtime_error(path + ": model file version " + root.value("version", json()).dump() +
                             "; this nnx reads version 1");
  if (!root.value("layers", json()).is_array() || !root.value("state_dict", json()).is_object())
    throw std::runtime_error(path + ": malformed model file (no list of layers or no state dict)");
  return root;
}

// Reads the parameters of one layer: role -> state-dict key (the layer's "params") -> array entry.
runtime::ParamReader param_reader(const runtime::NpzArchive& archive, const json& spec,
                                  const json& state) {
  return [&archive, &spec, &state](const std::string& role, const std::vector<int64_t>& shape) {
    const json params = spec.value("params", json::object());
    const std::string key = params.is_object() ? string_at(params, role.c_str()) : "";
    if (key.empty()) throw std::runtime_error("no parameter '" + role + "' in its \"params\"");
    const json entry = state.value(key, json());
    const std::string name = entry.is_object() ? string_at(entry, "__array__") : "";
    if (name.empty())
      throw std::runtime_error("parameter '" + key + "' is missing from the state dict");
    runtime::NpyArray array =
        runtime::parse_npy_as_float(archive.read(name + ".npy"), "parameter '" + key + "'");
    if (array.shape != shape)
      throw std::runtime_error("parameter '" + key + "' has shape " + shape_string(array.shape) +
                               ", the layer needs " + shape_string(shape));
    return std::move(array.values);
  };
}

}  // namespace

#endif  // NNX_MODEL_FILES

Model::Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

#if !NNX_MODEL_FILES
Model Model::load(const std::string& path) {
  throw std::runtime_error(path + ": this nnx was built without nlohmann/json, so it cannot read "
                           "model files; install it (Debian: nlohmann-json3-dev) and rebuild");
}
#else

Model Model::load(const std::string& path) {
  const runtime::NpzArchive archive(path);
  const json root = read_root(archive);
  const json& state = root["state_dict"];
  auto impl = std::make_shared<Impl>();
  const json metadata = root.value("metadata", json::object());
  if (metadata.is_object())
    for (const auto& [key, value] : metadata.items())
      impl->metadata[key] = value.is_string() ? value.get<std::string>() : value.dump();

  size_t index = 0;
  for (const json& spec : root["layers"]) {
    const std::string name = spec.is_object() ? string_at(spec, "name") : "";
    const std::string type = spec.is_object() ? string_at(spec, "type") : "";
    std::unique_ptr<runtime::Layer> layer;
    try {
      if (!spec.is_object()) throw std::runtime_error("not a JSON object");
      layer = runtime::make_layer(spec, param_reader(archive, spec, state));
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": layer " + std::to_string(index) + " ('" + name + "', " +
                               (type.empty() ? "no type" : type) + "): " + e.what());
    }
    ++index;
    if (!layer) continue;  // the identity in inference
    // A ReLU right after a Linear or Conv2d runs in that layer's write-back (same values).
    if (type == "ReLU" && !impl->layers.empty() && impl->layers.back()->fuse_relu()) continue;
    impl->layers.push_back(std::move(layer));
    impl->names.push_back(name);
  }
  return Model(std::move(impl));
}
#endif  // NNX_MODEL_FILES

Tensor Model::forward(const Tensor& input) const {
  if (int64_t(input.data.size()) != input.numel())
    throw std::invalid_argument("Model::forward: the input holds " + std::to_string(input.data.size()) +
                                " values but its shape " + shape_string(input.shape) + " needs " +
                                std::to_string(input.numel()));
  Tensor x = input;
  for (size_t i = 0; i < impl_->layers.size(); ++i) {
    try {
      x = impl_->layers[i]->forward(std::move(x));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("Model::forward: layer " + std::to_string(i) + " ('" +
                                  impl_->names[i] + "', " + impl_->layers[i]->describe() + "): " +
                                  e.what());
    }
  }
  return x;
}

size_t Model::num_layers() const { return impl_->layers.size(); }

std::string Model::summary() const {
  std::string out;
  for (size_t i = 0; i < impl_->layers.size(); ++i)
    out += std::to_string(i) + " " + impl_->names[i] + ": " + impl_->layers[i]->describe() + "\n";
  return out;
}

const std::map<std::string, std::string>& Model::metadata() const { return impl_->metadata; }

}  // namespace nnx
