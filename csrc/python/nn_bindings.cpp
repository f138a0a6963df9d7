// Bindings of nnx/nn.h: numpy in, numpy out, with the signatures of python/nnx/_kernels.py.
// Arrays must be C-contiguous and share one float dtype (float32 -> SIMD kernels, float64 -> the
// reference); the seam in _kernels.py makes them so. The GIL is released while kernels run.
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "arrays.h"
#include "nnx/nn.h"

namespace nnx::python {
namespace {

Activation parse_activation(const std::string& name) {
  static const char* names[] = {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus",
                                "hardsigmoid"};
  for (int i = 0; i < 7; ++i)
    if (name == names[i]) return static_cast<Activation>(i);
  throw py::value_error("unknown activation '" + name + "'");
}

PointLoss parse_point_loss(const std::string& name) {
  if (name == "mse") return PointLoss::mse;
  if (name == "l1") return PointLoss::l1;
  if (name == "bce_with_logits") return PointLoss::bce_with_logits;
  throw py::value_error("unknown loss '" + name + "'");
}

template <typename T>
T* writable(py::array& x, const char* fn, const char* name) {
  if (!x.writeable()) throw py::value_error(std::string(fn) + ": " + name + " is read-only");
  return checked_data<T>(x, fn, name);
}

void same_shape(const py::array& a, const py::array& b, const char* fn, const char* an,
                const char* bn) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same)
    throw py::value_error(std::string(fn) + ": " + an + " has shape " + shape_str(a) + " but " +
                          bn + " has shape " + shape_str(b));
}

// (rows, cols) of an array seen as rows of its last axis.
std::pair<int64_t, int64_t> rows_cols(const py::array& x, const char* fn, const char* name) {
  if (x.ndim() < 1) throw py::value_error(std::string(fn) + ": " + name + " must have an axis");
  const int64_t cols = x.shape(x.ndim() - 1);
  return {cols == 0 ? 0 : x.size() / cols, cols};
}


// Calls f(T{}) with T the float type of x.
template <class F>
auto by_dtype(const py::array& x, const char* fn, const char* name, F f) {
  return float_dtype(x, fn, name) == Dtype::f32 ? f(float{}) : f(double{});
}

const int64_t* class_targets(const py::array& target, int64_t rows, const char* fn) {
  if (target.ndim() != 1 || target.shape(0) != rows)
    throw py::value_error(std::string(fn) + ": target must have shape (" + std::to_string(rows) +
                          ",), got " + shape_str(target));
  return checked_data<int64_t>(target, fn, "target");
}

void bind_activations(py::module_& m) {
  m.def("act_forward", [](const std::string& name, const py::array& x, double alpha) {
    const Activation act = parse_activation(name);
    py::array y = new_array_like(x);
    by_dtype(x, "act_forward", "x", [&](auto t) {
      using T = decltype(t);
      const T* xp = checked_data<T>(x, "act_forward", "x");
      T* yp = checked_data<T>(y, "act_forward", "y");
      py::gil_scoped_release release;
      activation_forward<T>(act, yp, xp, x.size(), T(alpha));
    });
    return y;
  }, py::arg("name"), py::arg("x"), py::arg("alpha") = 0.0);

  m.def("act_backward", [](const std::string& name, const py::array& gy, const py::array& x,
                           const py::array& y, double alpha) {
    const char* fn = "act_backward";
    const Activation act = parse_activation(name);
    same_shape(gy, x, fn, "grad_y", "x");
    same_shape(y, x, fn, "y", "x");
    py::array gx = new_array_like(x);
    by_dtype(x, fn, "x", [&](auto t) {
      using T = decltype(t);
      const T *gp = checked_data<T>(gy, fn, "grad_y"), *xp = checked_data<T>(x, fn, "x"), *yp = checked_data<T>(y, fn, "y");
      T* out = checked_data<T>(gx, fn, "grad_x");
      py::gil_scoped_release release;
      activation_backward<T>(act, out, gp, xp, yp, x.size(), T(alpha));
    });
    return gx;
  }, py::arg("name"), py::arg("grad_y"), py::arg("x"), py::arg("y"), py::arg("alpha") = 0.0);

  m.def("softmax_forward", [](const py::array& x, bool log) {
    const auto [rows, cols] = rows_cols(x, "softmax", "x");
    py::array y = new_array_like(x);
    by_dtype(x, "softmax", "x", [&](auto t) {
      using T = decltype(t);
      const T* xp = checked_data<T>(x, "softmax", "x");
      T* yp = checked_data<T>(y, "softmax", "y");
      py::gil_scoped_release release;
      if (rows > 0) softmax_forward<T>(yp, xp, rows, cols, log);
    });
    return y;
  }, py::arg("x"), py::arg("log") = false);

  m.def("softmax_backward", [](const py::array& gy, const py::array& y, bool log) {
    const char* fn = "softmax_backward";
    same_shape(gy, y, fn, "grad_y", "y");
    const auto [rows, cols] = rows_cols(y, fn, "y");
    py::array gx = new_array_like(y);
    by_dtype(y, fn, "y", [&](auto t) {
      using T = decltype(t);
      const T *gp = checked_data<T>(gy, fn, "grad_y"), *yp = checked_data<T>(y, fn, "y");
      T* out = checked_data<T>(gx, fn, "grad_x");
      py::gil_scoped_release release;
      if (rows > 0) softmax_backward<T>(out, gp, yp, rows, cols, log);
    });
    return gx;
  }, py::arg("grad_y"), py::arg("y"), py::arg("log") = false);
}

void bind_losses(py::module_& m) {
  m.def("cross_entropy_forward", [](const py::array& logits, const py::array& target,
                                    double smoothing) {
    const char* fn = "cross_entropy";
    if (logits.ndim() != 2)
      throw py::value_error("cross_entropy: logits must be (N, C), got " + shape_str(logits));
    const int64_t rows = logits.shape(0), cols = logits.shape(1);
    py::array loss = new_array(logits.dtype(), {rows});
    py::array probs = new_array_like(logits);
    by_dtype(logits, fn, "logits", [&](auto t) {
      using T = decltype(t);
      const int64_t* index = nullptr;
      const T* prob = nullptr;
      if (target.ndim() == 1) {
        index = class_targets(target, rows, fn);
      } else {
        same_shape(target, logits, fn, "target", "logits");
        prob = checked_data<T>(target, fn, "target");
      }
      const T* x = checked_data<T>(logits, fn, "logits");
      T *lp = checked_data<T>(loss, fn, "loss"), *pp = checked_data<T>(probs, fn, "probs");
      py::gil_scoped_release release;
      cross_entropy_forward<T>(lp, pp, x, index, prob, rows, cols, T(smoothing));
    });
    return py::make_tuple(loss, probs);
  }, py::arg("logits"), py::arg("target"), py::arg("label_smoothing") = 0.0);

  m.def("cross_entropy_backward", [](const py::array& grad_loss, const py::array& probs,
                                     const py::array& target, double smoothing) {
    const char* fn = "cross_entropy_backward";
    if (probs.ndim() != 2) throw py::value_error("cross_entropy_backward: probs must be (N, C)");
    const int64_t rows = probs.shape(0), cols = probs.shape(1);
    py::array grad = new_array_like(probs);
    by_dtype(probs, fn, "probs", [&](auto t) {
      using T = decltype(t);
      const int64_t* index = nullptr;
      const T* prob = nullptr;
      if (target.ndim() == 1) {
        index = class_targets(target, rows, fn);
      } else {
        same_shape(target, probs, fn, "target", "probs");
        prob = checked_data<T>(target, fn, "target");
      }
      if (grad_loss.ndim() != 1 || grad_loss.shape(0) != rows)
        throw py::value_error("cross_entropy_backward: grad_loss must have shape (N,)");
      const T *gl = checked_data<T>(grad_loss, fn, "grad_loss"), *p = checked_data<T>(probs, fn, "probs");
      T* out = checked_data<T>(grad, fn, "grad");
      py::gil_scoped_release release;
      cross_entropy_backward<T>(out, gl, p, index, prob, rows, cols, T(smoothing));
    });
    return grad;
  }, py::arg("grad_loss"), py::arg("probs"), py::arg("target"), py::arg("label_smoothing") = 0.0);

  m.def("elementwise_loss_forward", [](const std::string& name, const py::array& input,
                                       const py::array& target) {
    const char* fn = "elementwise_loss";
    const PointLoss kind = parse_point_loss(name);
    same_shape(input, target, fn, "input", "target");
    py::array loss = new_array_like(input);
    by_dtype(input, fn, "input", [&](auto t) {
      using T = decltype(t);
      const T *x = checked_data<T>(input, fn, "input"), *tp = checked_data<T>(target, fn, "target");
      T* out = checked_data<T>(loss, fn, "loss");
      py::gil_scoped_release release;
      point_loss_forward<T>(kind, out, x, tp, input.size());
    });
    return loss;
  }, py::arg("name"), py::arg("input"), py::arg("target"));

  m.def("elementwise_loss_backward", [](const std::string& name, const py::array& grad,
                                        const py::array& input, const py::array& target) {
    const char* fn = "elementwise_loss_backward";
    const PointLoss kind = parse_point_loss(name);
    same_shape(input, target, fn, "input", "target");
    same_shape(grad, input, fn, "grad", "input");
    py::array gi = new_array_like(input);
    by_dtype(input, fn, "input", [&](auto t) {
      using T = decltype(t);
      const T *g = checked_data<T>(grad, fn, "grad"), *x = checked_data<T>(input, fn, "input"),
              *tp = checked_data<T>(target, fn, "target");
      T* out = checked_data<T>(gi, fn, "grad_input");
      py::gil_scoped_release release;
      point_loss_backward<T>(kind, out, g, x, tp, input.size());
    });
    return gi;
  }, py::arg("name"), py::arg("grad"), py::arg("input"), py::arg("target"));

  m.def("multiclass_hinge_forward", [](const py::array& scores, const py::array& target,
                                       double margin) {
    const char* fn = "multiclass_hinge_loss";
    if (scores.ndim() != 2) throw py::value_error("multiclass_hinge_loss: scores must be (N, C)");
    const int64_t rows = scores.shape(0), cols = scores.shape(1);
    py::array loss = new_array(scores.dtype(), {rows});
    by_dtype(scores, fn, "scores", [&](auto t) {
      using T = decltype(t);
      const int64_t* tp = class_targets(target, rows, fn);
      const T* s = checked_data<T>(scores, fn, "scores");
      T* out = checked_data<T>(loss, fn, "loss");
      py::gil_scoped_release release;
      multiclass_hinge_forward<T>(out, s, tp, rows, cols, T(margin));
    });
    return loss;
  }, py::arg("scores"), py::arg("target"), py::arg("margin") = 1.0);

  m.def("multiclass_hinge_backward", [](const py::array& grad_loss, const py::array& scores,
                                        const py::array& target, double margin) {
    const char* fn = "multiclass_hinge_backward";
    if (scores.ndim() != 2) throw py::value_error("multiclass_hinge_loss: scores must be (N, C)");
    const int64_t rows = scores.shape(0), cols = scores.shape(1);
    py::array grad = new_array_like(scores);
    by_dtype(scores, fn, "scores", [&](auto t) {
      using T = decltype(t);
      const int64_t* tp = class_targets(target, rows, fn);
      if (grad_loss.ndim() != 1 || grad_loss.shape(0) != rows)
        throw py::value_error("multiclass_hinge_backward: grad_loss must have shape (N,)");
      const T *gl = checked_data<T>(grad_loss, fn, "grad_loss"), *s = checked_data<T>(scores, fn, "scores");
      T* out = checked_data<T>(grad, fn, "grad");
      py::gil_scoped_release release;
      multiclass_hinge_backward<T>(out, gl, s, tp, rows, cols, T(margin));
    });
    return grad;
  }, py::arg("grad_loss"), py::arg("scores"), py::arg("target"), py::arg("margin") = 1.0);
}

void bind_optimizers(py::module_& m) {
  m.def("sgd_step", [](py::array& param, const py::array& grad, py::object buffer, double lr,
                       double momentum, double dampening, double weight_decay, bool nesterov,
                       bool first_step) {
    const char* fn = "sgd_step";
    same_shape(grad, param, fn, "grad", "param");
    py::array buf;
    if (!buffer.is_none()) {
      buf = array_argument(buffer, "sgd_step", "momentum_buffer");
      same_shape(buf, param, fn, "momentum_buffer", "param");
    }
    check_no_overlap(param, "param", grad, "grad", fn);
    SgdOptions o{lr, momentum, dampening, weight_decay, nesterov, first_step};
    by_dtype(param, fn, "param", [&](auto t) {
      using T = decltype(t);
      T* p = writable<T>(param, fn, "param");
      const T* g = checked_data<T>(grad, fn, "grad");
      T* b = buffer.is_none() ? nullptr : writable<T>(buf, fn, "momentum_buffer");
      py::gil_scoped_release release;
      sgd_step<T>(p, b, g, param.size(), o);
    });
  }, py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::kw_only(), py::arg("lr"),
     py::arg("momentum") = 0.0, py::arg("dampening") = 0.0, py::arg("weight_decay") = 0.0,
     py::arg("nesterov") = false, py::arg("first_step") = false);

  // One parameter's update after checking its arguments (only the checks unless `update`);
  // adam_steps runs it over lists of parameters in one call (a training step's Python overhead
  // was one call per parameter), checking every parameter before updating any.
  const auto adam_one = [](const char* fn, py::array& param, const py::array& grad,
                           py::array& exp_avg, py::array& exp_avg_sq, const AdamOptions& o,
                           bool update) {
    same_shape(grad, param, fn, "grad", "param");
    same_shape(exp_avg, param, fn, "exp_avg", "param");
    same_shape(exp_avg_sq, param, fn, "exp_avg_sq", "param");
    check_no_overlap(param, "param", grad, "grad", fn);
    by_dtype(param, fn, "param", [&](auto t) {
      using T = decltype(t);
      T* p = writable<T>(param, fn, "param");
      const T* g = checked_data<T>(grad, fn, "grad");
      T* m1 = writable<T>(exp_avg, fn, "exp_avg");
      T* m2 = writable<T>(exp_avg_sq, fn, "exp_avg_sq");
      if (!update) return;
      py::gil_scoped_release release;
      adam_step<T>(p, m1, m2, g, param.size(), o);
    });
  };

  m.def("adam_step", [adam_one](py::array& param, const py::array& grad, py::array& exp_avg,
                                py::array& exp_avg_sq, int64_t step, double lr, double beta1,
                                double beta2, double eps, double weight_decay, bool decoupled) {
    adam_one("adam_step", param, grad, exp_avg, exp_avg_sq,
             AdamOptions{lr, beta1, beta2, eps, weight_decay, decoupled, step}, true);
  }, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::kw_only(),
     py::arg("step"), py::arg("lr"), py::arg("beta1") = 0.9, py::arg("beta2") = 0.999,
     py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0, py::arg("decoupled") = false);

  m.def("adam_steps", [adam_one](const py::list& params, const py::list& grads,
                                 const py::list& exp_avgs, const py::list& exp_avg_sqs,
                                 const std::vector<int64_t>& steps, double lr, double beta1,
                                 double beta2, double eps, double weight_decay, bool decoupled) {
    const char* fn = "adam_steps";
    const size_t n = params.size();
    if (grads.size() != n || exp_avgs.size() != n || exp_avg_sqs.size() != n || steps.size() != n)
      throw py::value_error(std::string(fn) + ": params, grads, exp_avgs, exp_avg_sqs and steps "
                            "must have the same length");
    const auto array = [fn](const py::handle& h, const char* what) {
      if (!py::isinstance<py::array>(h))
        throw py::type_error(std::string(fn) + ": " + what + " must hold numpy arrays");
      return py::reinterpret_borrow<py::array>(h);
    };
    for (const bool update : {false, true})
      for (size_t i = 0; i < n; ++i) {
        py::array param = array(params[i], "params"), exp_avg = array(exp_avgs[i], "exp_avgs");
        py::array exp_avg_sq = array(exp_avg_sqs[i], "exp_avg_sqs");
        adam_one(fn, param, array(grads[i], "grads"), exp_avg, exp_avg_sq,
                 AdamOptions{lr, beta1, beta2, eps, weight_decay, decoupled, steps[i]}, update);
      }
  }, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"),
     py::arg("steps"), py::kw_only(), py::arg("lr"), py::arg("beta1") = 0.9,
     py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
     py::arg("decoupled") = false);

  m.def("sum_of_squares", [](const py::array& x) {
    const char* fn = "sum_of_squares";
    double total = 0;
    by_dtype(x, fn, "x", [&](auto t) {
      using T = decltype(t);
      const T* p = checked_data<T>(x, fn, "x");
      py::gil_scoped_release release;
      total = sum_of_squares<T>(p, x.size());
    });
    return total;
  }, py::arg("x"), "The sum of x**2 over every element of a contiguous float32/float64 array, "
     "as a Python float (accumulated in double).");
}

}  // namespace

void bind_nn(py::module_& m) {
  bind_activations(m);
  bind_losses(m);
  bind_optimizers(m);
}

}  // namespace nnx::python
