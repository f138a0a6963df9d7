#include <string>

#include "arrays.h"
#include "nnx/gemm.h"

namespace nnx::python {
namespace {

BiasMode parse_bias_mode(const std::string& mode) {
  if (mode == "none") return BiasMode::none;
  if (mode == "row") return BiasMode::row;
  if (mode == "col") return BiasMode::col;
  throw py::value_error("gemm: bias_mode must be 'none', 'row' or 'col', got '" + mode + "'");
}

// c = alpha * op(a) @ op(b) + beta * c (+ bias) (relu), in place.
void gemm(const py::array& a, const py::array& b, py::array& c, bool trans_a, bool trans_b,
          double alpha, double beta, const py::object& bias_obj, const std::string& bias_mode_name,
          bool relu) {
  const char* fn = "gemm";
  const Dtype dt = float_dtype(a, fn, "a");
  if (float_dtype(b, fn, "b") != dt || float_dtype(c, fn, "c") != dt)
    throw py::type_error(std::string("gemm: a, b and c must share one dtype, got ") +
                         std::string(py::str(a.dtype())) + ", " + std::string(py::str(b.dtype())) +
                         " and " + std::string(py::str(c.dtype())));
  Matrix ma = as_matrix(a, fn, "a", true);
  Matrix mb = as_matrix(b, fn, "b", true);
  Matrix mc = as_matrix(c, fn, "c", false);
  if (!c.writeable()) throw py::value_error("gemm: output c is read-only");
  // op(x) as the user asked, then the storage flip of a transposed view on top.
  const int64_t m = trans_a ? ma.cols : ma.rows, k = trans_a ? ma.rows : ma.cols;
  const int64_t kb = trans_b ? mb.cols : mb.rows, n = trans_b ? mb.rows : mb.cols;
  const std::string shapes = " (op(a) is " + std::to_string(m) + " x " + std::to_string(k) +
                             ", op(b) is " + std::to_string(kb) + " x " + std::to_string(n) + ")";
  if (k != kb)
    throw py::value_error("gemm: inner dimensions differ: a " + shape_str(a) + ", b " +
                          shape_str(b) + shapes);
  if (mc.rows != m || mc.cols != n)
    throw py::value_error("gemm: c has shape " + shape_str(c) + " but the product is (" +
                          std::to_string(m) + ", " + std::to_string(n) + ")" + shapes);
  check_no_overlap(c, "c", a, "a", fn);
  check_no_overlap(c, "c", b, "b", fn);

  GemmEpilogue ep;
  ep.bias_mode = parse_bias_mode(bias_mode_name);
  ep.relu = relu;
  py::array bias;
  if (!bias_obj.is_none()) {
    bias = array_argument(bias_obj, "gemm", "bias");
    if (ep.bias_mode == BiasMode::none)
      throw py::value_error("gemm: bias given but bias_mode is 'none'");
    if (float_dtype(bias, fn, "bias") != dt)
      throw py::type_error("gemm: bias must have the dtype of a, got " +
                           std::string(py::str(bias.dtype())));
    const int64_t want = ep.bias_mode == BiasMode::row ? m : n;
    if (bias.ndim() != 1 || bias.shape(0) != want)
      throw py::value_error("gemm: bias must have shape (" + std::to_string(want) + ",) for mode '" +
                            bias_mode_name + "', got " + shape_str(bias));
    if (bias.shape(0) > 1 && bias.strides(0) != bias.itemsize())
      throw py::value_error("gemm: bias must be contiguous; pass np.ascontiguousarray(bias)");
    check_no_overlap(c, "c", bias, "bias", fn);
    ep.bias = bias.data();
  } else if (ep.bias_mode != BiasMode::none) {
    throw py::value_error("gemm: bias_mode is '" + bias_mode_name + "' but no bias was given");
  }

  const Trans ta = (trans_a != ma.transposed) ? Trans::T : Trans::N;
  const Trans tb = (trans_b != mb.transposed) ? Trans::T : Trans::N;
  py::gil_scoped_release release;
  if (dt == Dtype::f32)
    sgemm(ta, tb, m, n, k, float(alpha), static_cast<const float*>(ma.data), ma.ld,
          static_cast<const float*>(mb.data), mb.ld, float(beta), static_cast<float*>(mc.data),
          mc.ld, ep);
  else
    dgemm(ta, tb, m, n, k, alpha, static_cast<const double*>(ma.data), ma.ld,
          static_cast<const double*>(mb.data), mb.ld, beta, static_cast<double*>(mc.data), mc.ld,
          ep);
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("c"), py::kw_only(),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("bias") = py::none(), py::arg("bias_mode") = "none",
        py::arg("relu") = false,
        "c = alpha * op(a) @ op(b) + beta * c (+ bias) (relu), in place. a, b, c: 2-D float32 or "
        "float64 arrays of one dtype; a and b may be row- or column-contiguous (x.T is free), c "
        "must be row-contiguous. The GIL is released while the kernel runs.");
}

}  // namespace nnx::python
