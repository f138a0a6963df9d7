// Bindings of nnx/conv.h with the signatures of python/nnx/_kernels.py (numpy in, numpy out).
#include <string>

#include "arrays.h"
#include "nnx/conv.h"

namespace nnx::python {
namespace {

using Pair = std::pair<int64_t, int64_t>;

template <typename T>
const T* input(const py::array& x, const char* fn, const char* name, py::ssize_t ndim) {
  if (x.ndim() != ndim)
    throw py::value_error(std::string(fn) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_str(x));
  return checked_data<T>(x, fn, name);
}

Conv2dShape conv_shape(const py::array& x, const py::array& w, Pair stride, Pair padding,
                       Pair dilation, const char* fn) {
  if (x.ndim() != 4) throw py::value_error(std::string(fn) + ": x must be 4-D (N, C, H, W), got " + shape_str(x));
  if (w.ndim() != 4) throw py::value_error(std::string(fn) + ": w must be 4-D (K, C, R, S), got " + shape_str(w));
  if (w.shape(1) != x.shape(1))
    throw py::value_error(std::string(fn) + ": weight has " + std::to_string(w.shape(1)) +
                          " input channels but input has " + std::to_string(x.shape(1)) +
                          " (input shape " + shape_str(x) + ")");
  Conv2dShape s;
  s.batch = x.shape(0), s.in_channels = x.shape(1), s.height = x.shape(2), s.width = x.shape(3);
  s.out_channels = w.shape(0), s.kernel_h = w.shape(2), s.kernel_w = w.shape(3);
  s.stride_h = stride.first, s.stride_w = stride.second;
  s.pad_h = padding.first, s.pad_w = padding.second;
  s.dilation_h = dilation.first, s.dilation_w = dilation.second;
  return s;
}


}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_forward", [](const py::array& x, const py::array& w, const py::object& b_obj,
                             Pair stride, Pair padding, Pair dilation, bool relu) {
    const char* fn = "conv2d";
    const Conv2dShape s = conv_shape(x, w, stride, padding, dilation, fn);
    nnx::check_conv2d_shape(s);  // before the output size below is used
    py::array y = new_array(x.dtype(), {s.batch, s.out_channels, s.out_height(), s.out_width()});
    const py::array b = b_obj.is_none() ? py::array() : array_argument(b_obj, "conv2d", "bias");
    if (!b_obj.is_none() && (b.ndim() != 1 || b.shape(0) != s.out_channels))
      throw py::value_error("conv2d: bias must have shape (" + std::to_string(s.out_channels) + ",), got " + shape_str(b));
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T *xp = input<T>(x, fn, "x", 4), *wp = input<T>(w, fn, "w", 4);
      const T* bp = b_obj.is_none() ? nullptr : input<T>(b, fn, "bias", 1);
      T* yp = static_cast<T*>(y.mutable_data());
      py::gil_scoped_release release;
      nnx::conv2d_forward<T>(yp, xp, wp, bp, s, relu);
    });
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"),
     py::arg("dilation"), py::arg("relu") = false);

  m.def("conv2d_backward", [](const py::array& gy, const py::array& x, const py::array& w,
                              Pair stride, Pair padding, Pair dilation, bool need_x, bool need_w,
                              bool need_b) {
    const char* fn = "conv2d_backward";
    const Conv2dShape s = conv_shape(x, w, stride, padding, dilation, fn);
    nnx::check_conv2d_shape(s);
    if (gy.ndim() != 4 || gy.shape(0) != s.batch || gy.shape(1) != s.out_channels ||
        gy.shape(2) != s.out_height() || gy.shape(3) != s.out_width())
      throw py::value_error("conv2d_backward: grad_y has shape " + shape_str(gy) + ", expected (" +
                            std::to_string(s.batch) + ", " + std::to_string(s.out_channels) + ", " +
                            std::to_string(s.out_height()) + ", " + std::to_string(s.out_width()) + ")");
    py::object gx = py::none(), gw = py::none(), gb = py::none();
    py::array ax, aw, ab;
    if (need_x) gx = ax = new_array(x.dtype(), {s.batch, s.in_channels, s.height, s.width});
    if (need_w) gw = aw = new_array(x.dtype(), {s.out_channels, s.in_channels, s.kernel_h, s.kernel_w});
    if (need_b) gb = ab = new_array(x.dtype(), {s.out_channels});
    by_float_dtype(x, fn, [&](auto t) {
      using T = decltype(t);
      const T *gyp = input<T>(gy, fn, "grad_y", 4), *xp = input<T>(x, fn, "x", 4),
              *wp = input<T>(w, fn, "w", 4);
      T* gxp = need_x ? static_cast<T*>(ax.mutable_data()) : nullptr;
      T* gwp = need_w ? static_cast<T*>(aw.mutable_data()) : nullptr;
      T* gbp = need_b ? static_cast<T*>(ab.mutable_data()) : nullptr;
      py::gil_scoped_release release;
      nnx::conv2d_backward<T>(gxp, gwp, gbp, gyp, xp, wp, s);
    });
    return py::make_tuple(gx, gw, gb);
  }, py::arg("grad_y"), py::arg("x"), py::arg("w"), py::arg("stride"), py::arg("padding"),
     py::arg("dilation"), py::arg("need_x") = true, py::arg("need_w") = true,
     py::arg("need_b") = true);
}

}  // namespace nnx::python
