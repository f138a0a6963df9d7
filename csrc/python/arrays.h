// Turning numpy arrays into the (pointer, shape, leading dimension) views the C++ API takes,
// with errors that name the argument. Nothing is ever copied or converted silently here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace nnx::python {

namespace py = pybind11;

std::string shape_str(const py::array& x);

// A new uninitialised C-contiguous array for a kernel's output, its data 64-byte aligned (so that
// vector loads never straddle cache lines) and recycled: a training loop asks for the same sizes
// every step, and memory fresh from the OS costs a page fault per 4 KiB on first touch (a tenth
// of a LeNet-5 step went to clearing pages). Blocks of 64 KiB or more are kept after their array
// dies, in free lists by size, up to 256 MiB in all. MemoryError if the size overflows or the
// allocation fails.
py::array new_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape);
template <typename T>
py::array_t<T> new_array_of(const std::vector<py::ssize_t>& shape) {
  return py::array_t<T>(new_array(py::dtype::of<T>(), shape));
}
// new_array with x's dtype and shape.
py::array new_array_like(const py::array& x);

// An optional array argument (taken as py::object so that None is allowed) as an array; TypeError
// naming `fn` and `name` for anything else (a number or a list is never read as an array).
py::array array_argument(const py::object& o, const char* fn, const char* name);

enum class Dtype { f32, f64 };
// The floating dtype of `x`; TypeError naming `name` for anything else.
Dtype float_dtype(const py::array& x, const char* fn, const char* name);

// ValueError unless x's data is aligned for its dtype (numpy can make views that are not, e.g. of
// a byte buffer at an odd offset; reading through a misaligned T* is undefined behaviour).
void require_aligned(const py::array& x, const char* fn, const char* name);

// The data of `x` as T*, after checking that its dtype is T and that it is C-contiguous; an error
// naming `fn` and `name` otherwise. Writing through the pointer is the caller's business.
template <typename T>
T* checked_data(const py::array& x, const char* fn, const char* name) {
  if (!x.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(fn) + ": " + name + " must be " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(x.dtype())));
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": " + name + " must be C-contiguous");
  require_aligned(x, fn, name);
  return static_cast<T*>(const_cast<void*>(x.data()));
}

// Calls f(T{}) with T the float type of x (float or double); TypeError for anything else.
template <class F>
auto by_float_dtype(const py::array& x, const char* fn, F f) {
  return float_dtype(x, fn, "x") == Dtype::f32 ? f(float{}) : f(double{});
}

// A 2-D array stored row-major with a leading dimension: either as given (transposed == false) or
// as the transpose of a row-major matrix (a Fortran-ordered array, e.g. `x.T`; transposed == true).
struct Matrix {
  void* data;
  int64_t rows, cols;  // of the array as the user sees it
  int64_t ld;          // leading dimension of the stored row-major matrix
  bool transposed;
};
// ValueError if `x` is not 2-D or its strides fit neither layout (a non-contiguous slice, negative
// strides): such arrays must be copied by the caller, explicitly.
Matrix as_matrix(const py::array& x, const char* fn, const char* name, bool allow_transposed);

// ValueError if the memory of `out` overlaps that of `in`.
void check_no_overlap(const py::array& out, const char* out_name, const py::array& in,
                      const char* in_name, const char* fn);

}  // namespace nnx::python
