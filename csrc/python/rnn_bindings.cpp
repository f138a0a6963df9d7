// Bindings of nnx/rnn.h with the signatures of python/nnx/_kernels.py. Every array's shape is
// checked against the layer's (T, B, I, H) here, since the C++ API trusts its pointers.
#include <string>
#include <vector>

#include "arrays.h"
#include "nnx/rnn.h"

namespace nnx::python {
namespace {

void need_shape(const py::array& a, const std::vector<py::ssize_t>& shape, const char* fn,
                const char* name) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(py::ssize_t(i)) == shape[i];
  if (ok) return;
  std::string want = "(";
  for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
  throw py::value_error(std::string(fn) + ": " + name + " must have shape " + want +
                        (shape.size() == 1 ? ",)" : ")") + ", got " + shape_str(a));
}

template <typename T>
const T* data_of(const py::array& a, const std::vector<py::ssize_t>& shape, const char* fn,
                 const char* name) {
  need_shape(a, shape, fn, name);
  return checked_data<T>(a, fn, name);
}

// An optional argument (None: null) of the given shape.
template <typename T>
const T* optional_data(const py::object& o, const std::vector<py::ssize_t>& shape, const char* fn,
                       const char* name) {
  if (o.is_none()) return nullptr;
  return data_of<T>(array_argument(o, fn, name), shape, fn, name);
}

RnnNonlinearity nonlinearity_of(const std::string& name, const char* fn) {
  if (name == "tanh") return RnnNonlinearity::tanh;
  if (name == "relu") return RnnNonlinearity::relu;
  throw py::value_error(std::string(fn) + ": nonlinearity must be 'tanh' or 'relu', got '" +
                        name + "'");
}

// (T, B, I, H) of a layer with `gates` gates from x (T, B, I) and w_hh (G H, H), all checked.
RnnShape layer_shape(const py::array& x, const py::array& w_ih, const py::array& w_hh,
                     int64_t gates, const char* fn) {
  if (x.ndim() != 3)
    throw py::value_error(std::string(fn) + ": x must be 3-D (T, B, I), got " + shape_str(x));
  if (w_hh.ndim() != 2 || w_hh.shape(1) < 1 || w_hh.shape(0) != gates * w_hh.shape(1))
    throw py::value_error(std::string(fn) + ": w_hh must have shape (" + std::to_string(gates) +
                          " H, H) with H >= 1, got " + shape_str(w_hh));
  const RnnShape s{x.shape(0), x.shape(1), x.shape(2), w_hh.shape(1)};
  need_shape(w_ih, {gates * s.hidden, s.input}, fn, "w_ih");
  return s;
}

// An output array, or None when not wanted.
py::object maybe_array(bool wanted, const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
  return wanted ? py::object(new_array(dtype, shape)) : py::object(py::none());
}

template <typename T>
T* out_ptr(const py::object& o) {
  return o.is_none() ? nullptr : static_cast<T*>(o.cast<py::array>().mutable_data());
}

// (T, B, I, H) of an LSTM over table[ids]: ids (T, B), table (V, I), weights checked.
RnnShape embedded_shape(const py::array& ids, const py::array& table, const py::array& w_ih,
                        const py::array& w_hh, const char* fn) {
  if (ids.ndim() != 2 || table.ndim() != 2)
    throw py::value_error(std::string(fn) + ": ids must be 2-D (T, B) and table 2-D (V, I), got " +
                          shape_str(ids) + " and " + shape_str(table));
  if (w_hh.ndim() != 2 || w_hh.shape(1) < 1 || w_hh.shape(0) != 4 * w_hh.shape(1))
    throw py::value_error(std::string(fn) + ": w_hh must have shape (4 H, H) with H >= 1, got " +
                          shape_str(w_hh));
  const RnnShape s{ids.shape(0), ids.shape(1), table.shape(1), w_hh.shape(1)};
  need_shape(w_ih, {4 * s.hidden, s.input}, fn, "w_ih");
  return s;
}

// What an LSTM forward returns: y (T, B, H), h_n and c_n (B, H), and the saved buffer.
struct LstmOutputs {
  py::array y, h_n, c_n, saved;
  LstmOutputs(const py::dtype& dt, const RnnShape& s)
      : y(new_array(dt, {s.steps, s.batch, s.hidden})), h_n(new_array(dt, {s.batch, s.hidden})),
        c_n(new_array(dt, {s.batch, s.hidden})),
        saved(new_array(dt, {py::ssize_t(lstm_saved_size(s))})) {}
  py::tuple tuple() const { return py::make_tuple(y, h_n, c_n, saved); }
};

// The optional arguments of an LSTM forward (biases, initial states), shape-checked; null when
// None.
template <typename T>
struct LstmOptionals {
  const T *b_ih, *b_hh, *h0, *c0;
  LstmOptionals(const py::object& bi, const py::object& bh, const py::object& h0_,
                const py::object& c0_, const RnnShape& s, const char* fn)
      : b_ih(optional_data<T>(bi, {4 * s.hidden}, fn, "b_ih")),
        b_hh(optional_data<T>(bh, {4 * s.hidden}, fn, "b_hh")),
        h0(optional_data<T>(h0_, {s.batch, s.hidden}, fn, "h0")),
        c0(optional_data<T>(c0_, {s.batch, s.hidden}, fn, "c0")) {}
};

// What an LSTM backward returns, None for the gradients not asked for: the input's gradient
// (input_shape), grad_w_ih, grad_w_hh, grad_b, grad_h0, grad_c0.
struct LstmGradients {
  py::object input, w_ih, w_hh, b, h0, c0;
  LstmGradients(const py::dtype& dt, const RnnShape& s, std::vector<py::ssize_t> input_shape,
                bool need_input, bool need_weights, bool need_states)
      : input(maybe_array(need_input, dt, input_shape)),
        w_ih(maybe_array(need_weights, dt, {4 * s.hidden, s.input})),
        w_hh(maybe_array(need_weights, dt, {4 * s.hidden, s.hidden})),
        b(maybe_array(need_weights, dt, {4 * s.hidden})),
        h0(maybe_array(need_states, dt, {s.batch, s.hidden})),
        c0(maybe_array(need_states, dt, {s.batch, s.hidden})) {}
  py::tuple tuple() const { return py::make_tuple(input, w_ih, w_hh, b, h0, c0); }
};

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("lstm_forward", [](const py::array& x, const py::array& w_ih, const py::array& w_hh,
                           const py::object& b_ih, const py::object& b_hh, const py::object& h0,
                           const py::object& c0) {
    const char* fn = "lstm_forward";
    const RnnShape s = layer_shape(x, w_ih, w_hh, 4, fn);
    LstmOutputs out(x.dtype(), s);
    by_float_dtype(x, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* xp = checked_data<T>(x, fn, "x");
      const T* wi = checked_data<T>(w_ih, fn, "w_ih");
      const T* wh = checked_data<T>(w_hh, fn, "w_hh");
      const LstmOptionals<T> o(b_ih, b_hh, h0, c0, s, fn);
      T *y = out_ptr<T>(out.y), *hn = out_ptr<T>(out.h_n), *cn = out_ptr<T>(out.c_n),
        *sv = out_ptr<T>(out.saved);
      py::gil_scoped_release release;
      lstm_forward<T>(s, xp, wi, wh, o.b_ih, o.b_hh, o.h0, o.c0, y, hn, cn, sv);
    });
    return out.tuple();
  }, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
     py::arg("b_hh") = py::none(), py::arg("h0") = py::none(), py::arg("c0") = py::none(),
     "(y, h_n, c_n, saved) of one LSTM layer (see nnx/rnn.h); `saved` is the opaque buffer "
     "lstm_backward needs. The GIL is released while the kernel runs.");

  m.def("lstm_backward", [](const py::array& grad_y, const py::object& grad_hn,
                            const py::object& grad_cn, const py::array& x, const py::array& w_ih,
                            const py::array& w_hh, const py::array& saved, bool need_input,
                            bool need_weights, bool need_states) {
    const char* fn = "lstm_backward";
    const RnnShape s = layer_shape(x, w_ih, w_hh, 4, fn);
    const py::ssize_t t = s.steps, b = s.batch, h = s.hidden;
    LstmGradients g(x.dtype(), s, {t, b, s.input}, need_input, need_weights, need_states);
    by_float_dtype(x, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* gy = data_of<T>(grad_y, {t, b, h}, fn, "grad_y");
      const T* ghn = optional_data<T>(grad_hn, {b, h}, fn, "grad_hn");
      const T* gcn = optional_data<T>(grad_cn, {b, h}, fn, "grad_cn");
      const T* xp = checked_data<T>(x, fn, "x");
      const T* wi = checked_data<T>(w_ih, fn, "w_ih");
      const T* wh = checked_data<T>(w_hh, fn, "w_hh");
      const T* sv = data_of<T>(saved, {py::ssize_t(lstm_saved_size(s))}, fn, "saved");
      T *gx = out_ptr<T>(g.input), *gwi = out_ptr<T>(g.w_ih), *gwh = out_ptr<T>(g.w_hh),
        *gb = out_ptr<T>(g.b), *gh0 = out_ptr<T>(g.h0), *gc0 = out_ptr<T>(g.c0);
      py::gil_scoped_release release;
      lstm_backward<T>(s, gy, ghn, gcn, xp, wi, wh, sv, gx, gwi, gwh, gb, gh0, gc0);
    });
    return g.tuple();
  }, py::arg("grad_y"), py::arg("grad_hn"), py::arg("grad_cn"), py::arg("x"), py::arg("w_ih"),
     py::arg("w_hh"), py::arg("saved"), py::arg("need_input") = true,
     py::arg("need_weights") = true, py::arg("need_states") = true,
     "(grad_x, grad_w_ih, grad_w_hh, grad_b, grad_h0, grad_c0) of lstm_forward; None for the "
     "gradients not asked for.");

  m.def("lstm_forward_embedded", [](const py::array& ids, const py::array& table,
                                    const py::array& w_ih, const py::array& w_hh,
                                    const py::object& b_ih, const py::object& b_hh,
                                    const py::object& h0, const py::object& c0) {
    const char* fn = "lstm_forward_embedded";
    const RnnShape s = embedded_shape(ids, table, w_ih, w_hh, fn);
    LstmOutputs out(table.dtype(), s);
    const int64_t* idp = checked_data<int64_t>(ids, fn, "ids");
    by_float_dtype(table, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* tp = checked_data<T>(table, fn, "table");
      const T* wi = checked_data<T>(w_ih, fn, "w_ih");
      const T* wh = checked_data<T>(w_hh, fn, "w_hh");
      const LstmOptionals<T> o(b_ih, b_hh, h0, c0, s, fn);
      T *y = out_ptr<T>(out.y), *hn = out_ptr<T>(out.h_n), *cn = out_ptr<T>(out.c_n),
        *sv = out_ptr<T>(out.saved);
      const int64_t vocab = table.shape(0);
      py::gil_scoped_release release;
      lstm_forward_embedded<T>(s, idp, tp, vocab, wi, wh, o.b_ih, o.b_hh, o.h0, o.c0, y, hn, cn,
                               sv);
    });
    return out.tuple();
  }, py::arg("ids"), py::arg("table"), py::arg("w_ih"), py::arg("w_hh"),
     py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none(), py::arg("h0") = py::none(),
     py::arg("c0") = py::none(),
     "lstm_forward for the input table[ids] (int64 ids (T, B), table (V, I)): the input "
     "projection is computed per table row (see nnx/rnn.h). IndexError for an id outside [0, V).");

  m.def("lstm_backward_embedded", [](const py::array& grad_y, const py::object& grad_hn,
                                     const py::object& grad_cn, const py::array& ids,
                                     const py::array& table, const py::array& w_ih,
                                     const py::array& w_hh, const py::array& saved,
                                     bool need_table, bool need_weights, bool need_states) {
    const char* fn = "lstm_backward_embedded";
    const RnnShape s = embedded_shape(ids, table, w_ih, w_hh, fn);
    const py::ssize_t t = s.steps, b = s.batch, h = s.hidden;
    LstmGradients g(table.dtype(), s, {table.shape(0), s.input}, need_table, need_weights,
                    need_states);
    const int64_t* idp = checked_data<int64_t>(ids, fn, "ids");
    by_float_dtype(table, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* gy = data_of<T>(grad_y, {t, b, h}, fn, "grad_y");
      const T* ghn = optional_data<T>(grad_hn, {b, h}, fn, "grad_hn");
      const T* gcn = optional_data<T>(grad_cn, {b, h}, fn, "grad_cn");
      const T* tp = checked_data<T>(table, fn, "table");
      const T* wi = checked_data<T>(w_ih, fn, "w_ih");
      const T* wh = checked_data<T>(w_hh, fn, "w_hh");
      const T* sv = data_of<T>(saved, {py::ssize_t(lstm_saved_size(s))}, fn, "saved");
      T *gt = out_ptr<T>(g.input), *gwi = out_ptr<T>(g.w_ih), *gwh = out_ptr<T>(g.w_hh),
        *gb = out_ptr<T>(g.b), *gh0 = out_ptr<T>(g.h0), *gc0 = out_ptr<T>(g.c0);
      const int64_t vocab = table.shape(0);
      py::gil_scoped_release release;
      lstm_backward_embedded<T>(s, gy, ghn, gcn, idp, tp, vocab, wi, wh, sv, gt, gwi, gwh, gb,
                                gh0, gc0);
    });
    return g.tuple();
  }, py::arg("grad_y"), py::arg("grad_hn"), py::arg("grad_cn"), py::arg("ids"), py::arg("table"),
     py::arg("w_ih"), py::arg("w_hh"), py::arg("saved"), py::arg("need_table") = true,
     py::arg("need_weights") = true, py::arg("need_states") = true,
     "(grad_table, grad_w_ih, grad_w_hh, grad_b, grad_h0, grad_c0) of lstm_forward_embedded; "
     "None for the gradients not asked for.");

  m.def("rnn_forward", [](const py::array& x, const py::array& w_ih, const py::array& w_hh,
                          const py::object& b_ih, const py::object& b_hh, const py::object& h0,
                          const std::string& nonlinearity) {
    const char* fn = "rnn_forward";
    const RnnNonlinearity act = nonlinearity_of(nonlinearity, fn);
    const RnnShape s = layer_shape(x, w_ih, w_hh, 1, fn);
    const py::ssize_t t = s.steps, b = s.batch, h = s.hidden;
    py::array y = new_array(x.dtype(), {t, b, h}), h_n = new_array(x.dtype(), {b, h});
    py::array saved = new_array(x.dtype(), {py::ssize_t(rnn_saved_size(s))});
    by_float_dtype(x, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* xp = checked_data<T>(x, fn, "x");
      const T* wi = checked_data<T>(w_ih, fn, "w_ih");
      const T* wh = checked_data<T>(w_hh, fn, "w_hh");
      const T* bi = optional_data<T>(b_ih, {h}, fn, "b_ih");
      const T* bh = optional_data<T>(b_hh, {h}, fn, "b_hh");
      const T* h0p = optional_data<T>(h0, {b, h}, fn, "h0");
      T *yp = static_cast<T*>(y.mutable_data()), *hn = static_cast<T*>(h_n.mutable_data()),
        *sv = static_cast<T*>(saved.mutable_data());
      py::gil_scoped_release release;
      rnn_forward<T>(s, act, xp, wi, wh, bi, bh, h0p, yp, hn, sv);
    });
    return py::make_tuple(y, h_n, saved);
  }, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
     py::arg("b_hh") = py::none(), py::arg("h0") = py::none(), py::arg("nonlinearity") = "tanh",
     "(y, h_n, saved) of one Elman RNN layer (see nnx/rnn.h).");

  m.def("rnn_backward", [](const py::array& grad_y, const py::object& grad_hn, const py::array& x,
                           const py::array& w_ih, const py::array& w_hh, const py::array& saved,
                           const std::string& nonlinearity, bool need_input, bool need_weights,
                           bool need_states) {
    const char* fn = "rnn_backward";
    const RnnNonlinearity act = nonlinearity_of(nonlinearity, fn);
    const RnnShape s = layer_shape(x, w_ih, w_hh, 1, fn);
    const py::ssize_t t = s.steps, b = s.batch, i = s.input, h = s.hidden;
    const py::dtype dt = x.dtype();
    py::object gx = maybe_array(need_input, dt, {t, b, i});
    py::object gw_ih = maybe_array(need_weights, dt, {h, i});
    py::object gw_hh = maybe_array(need_weights, dt, {h, h});
    py::object gb = maybe_array(need_weights, dt, {h});
    py::object gh0 = maybe_array(need_states, dt, {b, h});
    by_float_dtype(x, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* gy = data_of<T>(grad_y, {t, b, h}, fn, "grad_y");
      const T* ghn = optional_data<T>(grad_hn, {b, h}, fn, "grad_hn");
      const T* xp = checked_data<T>(x, fn, "x");
      const T* wi = checked_data<T>(w_ih, fn, "w_ih");
      const T* wh = checked_data<T>(w_hh, fn, "w_hh");
      const T* sv = data_of<T>(saved, {py::ssize_t(rnn_saved_size(s))}, fn, "saved");
      T *o_gx = out_ptr<T>(gx), *o_wi = out_ptr<T>(gw_ih), *o_wh = out_ptr<T>(gw_hh),
        *o_b = out_ptr<T>(gb), *o_h0 = out_ptr<T>(gh0);
      py::gil_scoped_release release;
      rnn_backward<T>(s, act, gy, ghn, xp, wi, wh, sv, o_gx, o_wi, o_wh, o_b, o_h0);
    });
    return py::make_tuple(gx, gw_ih, gw_hh, gb, gh0);
  }, py::arg("grad_y"), py::arg("grad_hn"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
     py::arg("saved"), py::arg("nonlinearity") = "tanh", py::arg("need_input") = true,
     py::arg("need_weights") = true, py::arg("need_states") = true,
     "(grad_x, grad_w_ih, grad_w_hh, grad_b, grad_h0) of rnn_forward; None for the gradients "
     "not asked for.");

  m.def("embedding_forward", [](const py::array& weight, const py::array& indices) {
    const char* fn = "embedding_forward";
    if (weight.ndim() != 2)
      throw py::value_error(std::string(fn) + ": weight must be 2-D (V, D), got " +
                            shape_str(weight));
    std::vector<py::ssize_t> out(indices.shape(), indices.shape() + indices.ndim());
    out.push_back(weight.shape(1));
    py::array y = new_array(weight.dtype(), out);
    const int64_t* idx = checked_data<int64_t>(indices, fn, "indices");
    by_float_dtype(weight, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* w = checked_data<T>(weight, fn, "weight");
      T* yp = static_cast<T*>(y.mutable_data());
      py::gil_scoped_release release;
      embedding_forward<T>(yp, w, idx, indices.size(), weight.shape(0), weight.shape(1));
    });
    return y;
  }, py::arg("weight"), py::arg("indices"),
     "Rows of weight (V, D) at int64 indices of any shape S: (*S, D). IndexError for an index "
     "outside [0, V).");

  m.def("embedding_backward", [](const py::array& grad_y, const py::array& indices,
                                 int64_t num_embeddings, const py::object& padding_idx) {
    const char* fn = "embedding_backward";
    if (grad_y.ndim() != indices.ndim() + 1 || grad_y.ndim() < 1)
      throw py::value_error(std::string(fn) + ": grad_y must have the indices' shape plus one "
                            "dimension, got " + shape_str(grad_y) + " for indices " +
                            shape_str(indices));
    for (py::ssize_t d = 0; d < indices.ndim(); ++d)
      if (grad_y.shape(d) != indices.shape(d))
        throw py::value_error(std::string(fn) + ": grad_y " + shape_str(grad_y) +
                              " does not match indices " + shape_str(indices));
    const int64_t dim = grad_y.shape(grad_y.ndim() - 1);
    if (num_embeddings < 0)
      throw py::value_error(std::string(fn) + ": num_embeddings must be >= 0");
    const int64_t pad = padding_idx.is_none() ? -1 : padding_idx.cast<int64_t>();
    py::array gw = new_array(grad_y.dtype(), {py::ssize_t(num_embeddings), py::ssize_t(dim)});
    const int64_t* idx = checked_data<int64_t>(indices, fn, "indices");
    by_float_dtype(grad_y, fn, [&](auto tag) {
      using T = decltype(tag);
      const T* g = checked_data<T>(grad_y, fn, "grad_y");
      T* out = static_cast<T*>(gw.mutable_data());
      py::gil_scoped_release release;
      embedding_backward<T>(out, g, idx, indices.size(), num_embeddings, dim, pad);
    });
    return gw;
  }, py::arg("grad_y"), py::arg("indices"), py::arg("num_embeddings"),
     py::arg("padding_idx") = py::none(),
     "The weight gradient of embedding_forward: a deterministic scatter-add of grad_y's rows at "
     "the indices; row padding_idx (None: no row) stays zero.");
}

}  // namespace nnx::python
