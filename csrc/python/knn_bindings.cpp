// Binding of nnx/knn.h with the signature of python/nnx/_kernels.py.
#include <string>

#include "arrays.h"
#include "nnx/knn.h"

namespace nnx::python {

void bind_knn(py::module_& m) {
  m.def("knn_search", [](const py::array& queries, const py::array& refs, int64_t k,
                         const std::string& metric) {
    const char* fn = "knn_search";
    const Metric met = parse_metric(metric);
    if (queries.ndim() != 2 || refs.ndim() != 2 || queries.shape(1) != refs.shape(1))
      throw py::value_error(std::string(fn) + ": queries (Q, D) and references (R, D) must be 2-D "
                            "with the same D, got " + shape_str(queries) + " and " + shape_str(refs));
    const py::ssize_t nq = queries.shape(0);
    const py::ssize_t cols = std::max<int64_t>(k, 0);
    py::array_t<int64_t> indices = new_array_of<int64_t>({nq, cols});
    py::array distances = new_array(queries.dtype(), {nq, cols});
    by_float_dtype(queries, fn, [&](auto t) {
      using T = decltype(t);
      const T* q = checked_data<T>(queries, fn, "queries");
      const T* r = checked_data<T>(refs, fn, "references");
      int64_t* ip = indices.mutable_data();
      T* dp = static_cast<T*>(distances.mutable_data());
      py::gil_scoped_release release;
      knn_search<T>(ip, dp, q, nq, r, refs.shape(0), queries.shape(1), k, met);
    });
    return py::make_tuple(indices, distances);
  }, py::arg("queries"), py::arg("refs"), py::arg("k"), py::arg("metric") = "l2",
     "(indices, distances) of the k nearest references of every query (see nnx/knn.h). The GIL "
     "is released while the kernel runs.");
}

}  // namespace nnx::python
