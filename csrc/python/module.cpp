// nnx._core: the one extension module. Each kernel family binds itself in its own file.
#include <pybind11/pybind11.h>

#include "nnx/runtime.h"

namespace py = pybind11;

namespace nnx::python {
void bind_runtime(py::module_& m);
void bind_gemm(py::module_& m);
void bind_nn(py::module_& m);
void bind_conv(py::module_& m);
void bind_pool_norm(py::module_& m);
void bind_knn(py::module_& m);
void bind_rnn(py::module_& m);
}  // namespace nnx::python

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnx native core: kernels behind a checked C++ API";
  m.attr("__version__") = nnx::build_info().version;
  nnx::python::bind_runtime(m);
  nnx::python::bind_gemm(m);
  nnx::python::bind_nn(m);
  nnx::python::bind_conv(m);
  nnx::python::bind_pool_norm(m);
  nnx::python::bind_knn(m);
  nnx::python::bind_rnn(m);
}
