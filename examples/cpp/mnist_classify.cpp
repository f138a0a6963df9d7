// Classifies MNIST test images with a model trained in Python and saved with nnx.save_model
// (e.g. `python examples/lenet5_mnist.py --save-model lenet5.npz`), and prints the accuracy.
//
//   mnist_classify MODEL IMAGES LABELS [--limit N] [--batch N] [--print]
//
// IMAGES and LABELS are the uncompressed IDX files (gunzip -k t10k-images-idx3-ubyte.gz
// t10k-labels-idx1-ubyte.gz): reading .gz would need zlib, which nnx does without. Pixels are
// scaled to [0, 1] and, when the model file's metadata has input_mean and input_std, standardized
// with them, exactly as nnx.data.MNIST + Standardize do in Python. --print writes one line per
// image, "index label predicted logit_0 ... logit_9", before the accuracy.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "nnx/model.h"

namespace {

struct Idx {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
};

// An IDX file of unsigned bytes: magic 00 00 08 <ndim>, ndim big-endian sizes, then the values.
Idx read_idx_u8(const std::string& path, int ndim) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (an uncompressed IDX file is needed)");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
    throw std::runtime_error(path + ": gzip-compressed; gunzip it first");
  const size_t header = 4 + 4 * size_t(ndim);
  if (bytes.size() < header || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 ||
      bytes[3] != ndim)
    throw std::runtime_error(path + ": not an IDX file of " + std::to_string(ndim) +
                             "-dimensional unsigned bytes");
  Idx idx;
  int64_t count = 1;
  for (int d = 0; d < ndim; ++d) {
    const uint8_t* p = &bytes[4 + 4 * size_t(d)];
    idx.dims.push_back(int64_t(p[0]) << 24 | int64_t(p[1]) << 16 | int64_t(p[2]) << 8 | p[3]);
    count *= idx.dims.back();
  }
  if (bytes.size() - header != size_t(count))
    throw std::runtime_error(path + ": truncated or has trailing bytes");
  idx.values.assign(bytes.begin() + long(header), bytes.end());
  return idx;
}

int64_t parse_count(const char* flag, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 1)
    throw std::invalid_argument(std::string(flag) + " needs a positive integer, got " + text);
  return v;
}

int run(int argc, char** argv) {
  std::vector<std::string> paths;
  int64_t limit = -1, batch = 256;
  bool print = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--limit" || arg == "--batch") && i + 1 < argc)
      (arg == "--limit" ? limit : batch) = parse_count(argv[i], argv[i + 1]), ++i;
    else if (arg == "--print")
      print = true;
    else if (!arg.empty() && arg[0] == '-')
      throw std::invalid_argument("unknown option " + arg);
    else
      paths.push_back(arg);
  }
  if (paths.size() != 3) {
    std::cerr << "usage: " << argv[0] << " MODEL IMAGES LABELS [--limit N] [--batch N] [--print]\n";
    return 2;
  }

  const nnx::Model model = nnx::Model::load(paths[0]);
  std::cerr << model.summary();
  const Idx images = read_idx_u8(paths[1], 3), labels = read_idx_u8(paths[2], 1);
  if (images.dims[0] != labels.dims[0])
    throw std::runtime_error("images and labels files hold different numbers of items");
  const int64_t rows = images.dims[1], cols = images.dims[2], pixels = rows * cols;
  const int64_t n = limit < 0 ? images.dims[0] : std::min(limit, images.dims[0]);

  // The standardization the model was trained with, in float32 as Python computes it.
  const auto& meta = model.metadata();
  const bool standardize = meta.count("input_mean") && meta.count("input_std");
  const float mean = standardize ? std::stof(meta.at("input_mean")) : 0.0f;
  const float std_dev = standardize ? std::stof(meta.at("input_std")) : 1.0f;

  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min(batch, n - start);
    nnx::Tensor x({count, 1, rows, cols});
    for (int64_t i = 0; i < count * pixels; ++i) {
      float v = float(images.values[size_t(start * pixels + i)]) / 255.0f;
      if (standardize) v = (v - mean) / std_dev;
      x.data[size_t(i)] = v;
    }
    const nnx::Tensor logits = model.forward(x);
    if (logits.dim() != 2 || logits.shape[0] != count)
      throw std::runtime_error("the model returned " + nnx::shape_string(logits.shape) +
                               ", expected logits (" + std::to_string(count) + ", classes)");
    const int64_t classes = logits.shape[1];
    for (int64_t i = 0; i < count; ++i) {
      const float* row = &logits.data[size_t(i * classes)];
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (row[c] > row[best]) best = c;  // ties to the first class, as numpy's argmax
      const int label = labels.values[size_t(start + i)];
      correct += best == label;
      if (print) {
        std::printf("%lld %d %lld", (long long)(start + i), label, (long long)best);
        for (int64_t c = 0; c < classes; ++c) std::printf(" %.9g", double(row[c]));
        std::printf("\n");
      }
    }
  }
  std::printf("accuracy %.4f (%lld / %lld)\n", n ? double(correct) / double(n) : 0.0,
              (long long)correct, (long long)n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mnist_classify: " << e.what() << "\n";
    return 1;
  }
}
