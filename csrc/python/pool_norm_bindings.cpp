// Bindings of nnx/pool.h and nnx/norm.h with the signatures of python/nnx/_kernels.py.
#include <pybind11/stl.h>

#include <string>

#include "arrays.h"
#include "nnx/norm.h"
#include "nnx/pool.h"

namespace nnx::python {
namespace {

using Pair = std::pair<int64_t, int64_t>;

void need_ndim(const py::array& x, py::ssize_t ndim, const char* fn, const char* name) {
  if (x.ndim() != ndim)
    throw py::value_error(std::string(fn) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D (N, C, H, W), got shape " + shape_str(x));
}

std::vector<int64_t> shape_of(const py::array& x) { return {x.shape(), x.shape() + x.ndim()}; }

// The pooling of (N, C, H, W) input of shape x_shape, checked.
Pool2dShape pool_shape(const std::vector<int64_t>& x_shape, Pair kernel, Pair stride, Pair padding) {
  Pool2dShape s;
  s.planes = x_shape[0] * x_shape[1], s.height = x_shape[2], s.width = x_shape[3];
  s.kernel_h = kernel.first, s.kernel_w = kernel.second, s.stride_h = stride.first,
  s.stride_w = stride.second, s.pad_h = padding.first, s.pad_w = padding.second;
  check_pool2d_shape(s);
  return s;
}

// (n, c, m) of an (N, C, ...) array for batch norm.
std::tuple<int64_t, int64_t, int64_t> ncm(const py::array& x, const char* fn) {
  if (x.ndim() < 2)
    throw py::value_error(std::string(fn) + ": input must be (N, C) or (N, C, ...), got " + shape_str(x));
  int64_t m = 1;
  for (py::ssize_t i = 2; i < x.ndim(); ++i) m *= x.shape(i);
  return {x.shape(0), x.shape(1), m};
}

template <typename T>
const T* optional_vector(const py::object& o, int64_t c, const char* fn, const char* name) {
  if (o.is_none()) return nullptr;
  const py::array a = array_argument(o, fn, name);
  if (a.ndim() != 1 || a.shape(0) != c)
    throw py::value_error(std::string(fn) + ": " + name + " must have shape (" + std::to_string(c) +
                          ",), got " + shape_str(a));
  return checked_data<T>(a, fn, name);
}

void bind_pooling(py::module_& m) {
  m.def("max_pool2d_forward", [](const py::array& x, Pair kernel, Pair stride, Pair padding) {
    const char* fn = "max_pool2d";
    need_ndim(x, 4, fn, "input");
    const Pool2dShape s = pool_shape(shape_of(x), kernel, stride, padding);
    std::vector<py::ssize_t> out{x.shape(0), x.shape(1), s.out_height(), s.out_width()};
    py::array y = new_array(x.dtype(), out);
    py::array_t<int64_t> idx = new_array_of<int64_t>(out);
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T* xp = checked_data<T>(x, fn, "input");
      T* yp = static_cast<T*>(y.mutable_data());
      int64_t* ip = idx.mutable_data();
      py::gil_scoped_release release;
      max_pool2d_forward<T>(yp, ip, xp, s);
    });
    return py::make_tuple(y, idx);
  }, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"));

  m.def("max_pool2d_backward", [](const py::array& gy, const py::array& indices,
                                  std::vector<int64_t> x_shape) {
    const char* fn = "max_pool2d_backward";
    need_ndim(gy, 4, fn, "grad_y");
    if (x_shape.size() != 4 || x_shape[0] != gy.shape(0) || x_shape[1] != gy.shape(1))
      throw py::value_error("max_pool2d_backward: x_shape does not match grad_y " + shape_str(gy));
    if (indices.ndim() != 4 || indices.size() != gy.size())
      throw py::value_error("max_pool2d_backward: indices must have grad_y's shape " + shape_str(gy));
    py::array gx = new_array(gy.dtype(), std::vector<py::ssize_t>(x_shape.begin(), x_shape.end()));
    by_float_dtype(gy, fn, [&](auto t) {
      using T = decltype(t);
      const T* g = checked_data<T>(gy, fn, "grad_y");
      const int64_t* ip = checked_data<int64_t>(indices, fn, "indices");
      T* out = static_cast<T*>(gx.mutable_data());
      py::gil_scoped_release release;
      max_pool2d_backward<T>(out, g, ip, x_shape[0] * x_shape[1], x_shape[2], x_shape[3],
                             gy.shape(2), gy.shape(3));
    });
    return gx;
  }, py::arg("grad_y"), py::arg("indices"), py::arg("x_shape"));

  m.def("avg_pool2d_forward", [](const py::array& x, Pair kernel, Pair stride, Pair padding,
                                 bool count_include_pad) {
    const char* fn = "avg_pool2d";
    need_ndim(x, 4, fn, "input");
    const Pool2dShape s = pool_shape(shape_of(x), kernel, stride, padding);
    py::array y = new_array(x.dtype(), {x.shape(0), x.shape(1), s.out_height(), s.out_width()});
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T* xp = checked_data<T>(x, fn, "input");
      T* yp = static_cast<T*>(y.mutable_data());
      py::gil_scoped_release release;
      avg_pool2d_forward<T>(yp, xp, s, count_include_pad);
    });
    return y;
  }, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("count_include_pad"));

  m.def("avg_pool2d_backward", [](const py::array& gy, std::vector<int64_t> x_shape, Pair kernel,
                                  Pair stride, Pair padding, bool count_include_pad) {
    const char* fn = "avg_pool2d_backward";
    need_ndim(gy, 4, fn, "grad_y");
    if (x_shape.size() != 4) throw py::value_error("avg_pool2d_backward: x_shape must have 4 sizes");
    const Pool2dShape s = pool_shape(x_shape, kernel, stride, padding);
    if (gy.shape(0) != x_shape[0] || gy.shape(1) != x_shape[1] || gy.shape(2) != s.out_height() ||
        gy.shape(3) != s.out_width())
      throw py::value_error("avg_pool2d_backward: grad_y " + shape_str(gy) + " does not match the pooling of x");
    py::array gx = new_array(gy.dtype(), std::vector<py::ssize_t>(x_shape.begin(), x_shape.end()));
    by_float_dtype(gy, fn, [&](auto t) {
      using T = decltype(t);
      const T* g = checked_data<T>(gy, fn, "grad_y");
      T* out = static_cast<T*>(gx.mutable_data());
      py::gil_scoped_release release;
      avg_pool2d_backward<T>(out, g, s, count_include_pad);
    });
    return gx;
  }, py::arg("grad_y"), py::arg("x_shape"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
     py::arg("count_include_pad"));

  m.def("adaptive_avg_pool2d_forward", [](const py::array& x, Pair output_size) {
    const char* fn = "adaptive_avg_pool2d";
    need_ndim(x, 4, fn, "input");
    py::array y = new_array(x.dtype(), {x.shape(0), x.shape(1), output_size.first, output_size.second});
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T* xp = checked_data<T>(x, fn, "input");
      T* yp = static_cast<T*>(y.mutable_data());
      py::gil_scoped_release release;
      adaptive_avg_pool2d_forward<T>(yp, xp, x.shape(0) * x.shape(1), x.shape(2), x.shape(3),
                                     output_size.first, output_size.second);
    });
    return y;
  }, py::arg("x"), py::arg("output_size"));

  m.def("adaptive_avg_pool2d_backward", [](const py::array& gy, std::vector<int64_t> x_shape) {
    const char* fn = "adaptive_avg_pool2d_backward";
    need_ndim(gy, 4, fn, "grad_y");
    if (x_shape.size() != 4 || x_shape[0] != gy.shape(0) || x_shape[1] != gy.shape(1))
      throw py::value_error("adaptive_avg_pool2d_backward: x_shape does not match grad_y " + shape_str(gy));
    py::array gx = new_array(gy.dtype(), std::vector<py::ssize_t>(x_shape.begin(), x_shape.end()));
    by_float_dtype(gy, fn, [&](auto t) {
      using T = decltype(t);
      const T* g = checked_data<T>(gy, fn, "grad_y");
      T* out = static_cast<T*>(gx.mutable_data());
      py::gil_scoped_release release;
      adaptive_avg_pool2d_backward<T>(out, g, x_shape[0] * x_shape[1], x_shape[2], x_shape[3],
                                      gy.shape(2), gy.shape(3));
    });
    return gx;
  }, py::arg("grad_y"), py::arg("x_shape"));
}

void bind_batch_norm(py::module_& m) {
  m.def("batch_norm_forward_train", [](const py::array& x, const py::object& gamma,
                                       const py::object& beta, double eps) {
    const char* fn = "batch_norm";
    const auto [n, c, mm] = ncm(x, fn);
    py::array y = new_array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    py::array mean = new_array(x.dtype(), {c}), invstd(x.dtype(), std::vector<py::ssize_t>{c});
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T* xp = checked_data<T>(x, fn, "input");
      const T* gp = optional_vector<T>(gamma, c, fn, "weight");
      const T* bp = optional_vector<T>(beta, c, fn, "bias");
      T *yp = static_cast<T*>(y.mutable_data()), *mp = static_cast<T*>(mean.mutable_data()),
        *ip = static_cast<T*>(invstd.mutable_data());
      py::gil_scoped_release release;
      batch_norm_forward_train<T>(yp, mp, ip, xp, gp, bp, n, c, mm, T(eps));
    });
    return py::make_tuple(y, mean, invstd);
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps"));

  m.def("batch_norm_forward_eval", [](const py::array& x, const py::array& running_mean,
                                      const py::array& running_var, const py::object& gamma,
                                      const py::object& beta, double eps) {
    const char* fn = "batch_norm";
    const auto [n, c, mm] = ncm(x, fn);
    py::array y = new_array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T* xp = checked_data<T>(x, fn, "input");
      const T* rm = optional_vector<T>(running_mean, c, fn, "running_mean");
      const T* rv = optional_vector<T>(running_var, c, fn, "running_var");
      const T* gp = optional_vector<T>(gamma, c, fn, "weight");
      const T* bp = optional_vector<T>(beta, c, fn, "bias");
      T* yp = static_cast<T*>(y.mutable_data());
      py::gil_scoped_release release;
      batch_norm_forward_eval<T>(yp, xp, rm, rv, gp, bp, n, c, mm, T(eps));
    });
    return y;
  }, py::arg("x"), py::arg("running_mean"), py::arg("running_var"), py::arg("gamma"),
     py::arg("beta"), py::arg("eps"));

  m.def("batch_norm_backward", [](const py::array& gy, const py::array& x, const py::object& gamma,
                                  const py::array& mean, const py::array& invstd) {
    const char* fn = "batch_norm_backward";
    const auto [n, c, mm] = ncm(x, fn);
    bool same = gy.ndim() == x.ndim();
    for (py::ssize_t i = 0; same && i < x.ndim(); ++i) same = gy.shape(i) == x.shape(i);
    if (!same)
      throw py::value_error("batch_norm_backward: grad_y " + shape_str(gy) + " does not match input " + shape_str(x));
    py::array gx = new_array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    py::array gg = new_array(x.dtype(), {c}), gb(x.dtype(), std::vector<py::ssize_t>{c});
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T *g = checked_data<T>(gy, fn, "grad_y"), *xp = checked_data<T>(x, fn, "input");
      const T* gp = optional_vector<T>(gamma, c, fn, "weight");
      const T* mp = optional_vector<T>(mean, c, fn, "mean");
      const T* ip = optional_vector<T>(invstd, c, fn, "invstd");
      T *gxp = static_cast<T*>(gx.mutable_data()), *ggp = static_cast<T*>(gg.mutable_data()),
        *gbp = static_cast<T*>(gb.mutable_data());
      py::gil_scoped_release release;
      batch_norm_backward<T>(gxp, ggp, gbp, g, xp, gp, mp, ip, n, c, mm);
    });
    return py::make_tuple(gx, gg, gb);
  }, py::arg("grad_y"), py::arg("x"), py::arg("gamma"), py::arg("mean"), py::arg("invstd"));
}

}  // namespace

void bind_pool_norm(py::module_& m) {
  bind_pooling(m);
  bind_batch_norm(m);
}

}  // namespace nnx::python
