#include "arrays.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>

namespace nnx::python {
namespace {

// The recycling behind new_array. Each block starts with a 64-byte header holding its size; the
// array's data follows it.
class ArrayMemory {
 public:
  static constexpr size_t kHeader = 64, kMinCached = 64 * 1024, kMaxCached = size_t(256) << 20;

  void* acquire(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    if (bytes >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        char* block = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return block + kHeader;
      }
    }
    char* block = static_cast<char*>(std::aligned_alloc(64, kHeader + bytes));
    if (block == nullptr) throw std::bad_alloc();
    *reinterpret_cast<size_t*>(block) = bytes;
    return block + kHeader;
  }

  void release(void* data) {
    char* block = static_cast<char*>(data) - kHeader;
    const size_t bytes = *reinterpret_cast<size_t*>(block);
    if (bytes >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kMaxCached) {
        free_[bytes].push_back(block);
        cached_ += bytes;
        return;
      }
    }
    std::free(block);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<char*>> free_;
  size_t cached_ = 0;
};

// Never destroyed: arrays may outlive the module's static objects at interpreter exit.
ArrayMemory& array_memory() {
  static ArrayMemory* memory = new ArrayMemory();
  return *memory;
}

}  // namespace

py::array new_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
  // Strides are products of the sizes too, zeros left out: they must fit as well (an empty array
  // with huge other sizes is refused like a huge one).
  size_t bytes = size_t(dtype.itemsize()), span = bytes;
  for (py::ssize_t d : shape) {
    if (d < 0) throw py::value_error("negative dimension " + std::to_string(d) + " in a shape");
    if (d != 0 && span > SIZE_MAX / 4 / size_t(d)) throw std::bad_alloc();  // size overflows
    if (d != 0) span *= size_t(d);
    bytes *= size_t(d);
  }
  void* data = array_memory().acquire(bytes);
  py::capsule owner(data, [](void* p) { array_memory().release(p); });
  return py::array(dtype, shape, data, owner);
}

py::array array_argument(const py::object& o, const char* fn, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(fn) + ": " + name + " must be a numpy array or None, got " +
                         std::string(py::str(py::type::of(o).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(o);
}

py::array new_array_like(const py::array& x) {
  return new_array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
}

std::string shape_str(const py::array& x) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < x.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(x.shape(i));
  }
  return s + (x.ndim() == 1 ? ",)" : ")");
}

Dtype float_dtype(const py::array& x, const char* fn, const char* name) {
  if (x.dtype().is(py::dtype::of<float>())) return Dtype::f32;
  if (x.dtype().is(py::dtype::of<double>())) return Dtype::f64;
  throw py::type_error(std::string(fn) + ": " + name + " must be float32 or float64, got " +
                       std::string(py::str(x.dtype())));
}

void require_aligned(const py::array& x, const char* fn, const char* name) {
  if (!(x.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(std::string(fn) + ": " + name + " is not aligned for its dtype; pass " +
                          "a copy (" + name + ".copy())");
}

Matrix as_matrix(const py::array& x, const char* fn, const char* name, bool allow_transposed) {
  if (x.ndim() != 2)
    throw py::value_error(std::string(fn) + ": " + name + " must be 2-D, got shape " +
                          shape_str(x));
  require_aligned(x, fn, name);
  const int64_t rows = x.shape(0), cols = x.shape(1), item = x.itemsize();
  const int64_t s0 = x.strides(0), s1 = x.strides(1);
  Matrix m{x.request().ptr == nullptr ? nullptr : const_cast<void*>(x.data()), rows, cols, 1, false};
  // Strides of length-1 (or empty) axes are meaningless: numpy may set them to anything.
  const bool unit_cols = cols <= 1 || s1 == item;
  const bool unit_rows = rows <= 1 || s0 == item;
  if (rows == 0 || cols == 0) {
    m.ld = std::max<int64_t>(1, cols);
    return m;
  }
  if (unit_cols && (rows <= 1 || (s0 > 0 && s0 % item == 0 && s0 / item >= cols))) {
    m.ld = rows <= 1 ? std::max<int64_t>(1, cols) : s0 / item;
    return m;
  }
  if (allow_transposed && unit_rows && s1 > 0 && s1 % item == 0 && s1 / item >= rows) {
    m.ld = s1 / item;
    m.transposed = true;
    return m;
  }
  throw py::value_error(std::string(fn) + ": " + name + " with shape " + shape_str(x) +
                        " and strides (" + std::to_string(s0) + ", " + std::to_string(s1) +
                        ") is not " + (allow_transposed ? "row- or column-contiguous" : "row-contiguous") +
                        "; pass np.ascontiguousarray(" + name + ")");
}

namespace {
// [lo, hi) bytes spanned by an array with non-negative or negative strides.
std::pair<const char*, const char*> byte_range(const py::array& x) {
  const char* base = static_cast<const char*>(x.data());
  const char* lo = base;
  const char* hi = base;
  if (x.size() == 0) return {lo, lo};
  for (py::ssize_t i = 0; i < x.ndim(); ++i) {
    const py::ssize_t span = (x.shape(i) - 1) * x.strides(i);
    if (span < 0) lo += span; else hi += span;
  }
  return {lo, hi + x.itemsize()};
}
}  // namespace

void check_no_overlap(const py::array& out, const char* out_name, const py::array& in,
                      const char* in_name, const char* fn) {
  const auto [olo, ohi] = byte_range(out);
  const auto [ilo, ihi] = byte_range(in);
  if (olo < ihi && ilo < ohi)
    throw py::value_error(std::string(fn) + ": output " + out_name + " overlaps input " + in_name +
                          " in memory; pass a separate output array");
}

}  // namespace nnx::python
