// Public C++ API of nnx's recurrent layers (LSTM, Elman RNN) over whole sequences, and of the
// embedding lookup. Every argument is checked here (std::invalid_argument, std::out_of_range for
// embedding indices); the kernels behind it trust what they are given.
//
// Layout is time-major and weights have PyTorch's shapes and gate order, so that state dicts
// interoperate: x (T, B, I), y (T, B, H), states (B, H); LSTM w_ih (4H, I), w_hh (4H, H),
// b_ih, b_hh (4H), the four row blocks of H being the gates i, f, g, o; RNN w_ih (H, I),
// w_hh (H, H), b_ih, b_hh (H). All arrays are dense and row-major.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nnx {

struct RnnShape {
  int64_t steps;   // T >= 1
  int64_t batch;   // B >= 0
  int64_t input;   // I >= 1
  int64_t hidden;  // H >= 1
};

enum class RnnNonlinearity : int { tanh = 0, relu = 1 };

// Elements of the buffer `saved` that a forward fills for its backward (what the backward needs
// besides the inputs: activated gates, hidden and cell states of every step, in an internal
// layout). Throws like the layer functions on a bad shape.
size_t lstm_saved_size(const RnnShape& shape);
size_t rnn_saved_size(const RnnShape& shape);

// One LSTM layer over a whole sequence. For t = 1..T:
//   z = x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh,  i, f, o = sigmoid(z_i, z_f, z_o), g = tanh(z_g),
//   c_t = f c_{t-1} + i g,  h_t = o tanh(c_t);  y[t - 1] = h_t.
// Biases, h0 and c0 may be null (zero). h_n, c_n (B, H) receive h_T and c_T; each may be null.
// `saved` (lstm_saved_size elements) may be null when no backward follows (inference).
template <typename T>
void lstm_forward(const RnnShape& shape, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                  const T* b_hh, const T* h0, const T* c0, T* y, T* h_n, T* c_n, T* saved);

// Backpropagation through time of lstm_forward, from the `saved` buffer it filled. grad_hn and
// grad_cn may be null (zero). Each output may be null (not wanted): grad_x (T, B, I),
// grad_w_ih (4H, I), grad_w_hh (4H, H), grad_b (4H) (the gradient of b_ih and equally of b_hh),
// grad_h0, grad_c0 (B, H). The weight gradients are overwritten, not accumulated.
template <typename T>
void lstm_backward(const RnnShape& shape, const T* grad_y, const T* grad_hn, const T* grad_cn,
                   const T* x, const T* w_ih, const T* w_hh, const T* saved, T* grad_x,
                   T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0, T* grad_c0);

// The same layer when its input is an embedding lookup, x[t][b] = table[ids[t][b]] with table
// (V, I) and ids (T, B) in [0, V): the input projection W_ih x + b is then computed once per table
// row instead of once per position (a (4H, V) matrix whose columns every step gathers), and the
// backward turns the gradient of those columns into the table's gradient (V, I) directly, with
// no (T, B, I) input or input gradient in between. Results equal embedding + lstm_forward /
// lstm_backward up to the order of floating-point sums.
template <typename T>
void lstm_forward_embedded(const RnnShape& shape, const int64_t* ids, const T* table,
                           int64_t vocab, const T* w_ih, const T* w_hh, const T* b_ih,
                           const T* b_hh, const T* h0, const T* c0, T* y, T* h_n, T* c_n,
                           T* saved);
template <typename T>
void lstm_backward_embedded(const RnnShape& shape, const T* grad_y, const T* grad_hn,
                            const T* grad_cn, const int64_t* ids, const T* table, int64_t vocab,
                            const T* w_ih, const T* w_hh, const T* saved, T* grad_table,
                            T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0, T* grad_c0);

// One Elman RNN layer: h_t = act(x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh), act tanh or relu.
template <typename T>
void rnn_forward(const RnnShape& shape, RnnNonlinearity act, const T* x, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const T* h0, T* y, T* h_n, T* saved);

template <typename T>
void rnn_backward(const RnnShape& shape, RnnNonlinearity act, const T* grad_y, const T* grad_hn,
                  const T* x, const T* w_ih, const T* w_hh, const T* saved, T* grad_x,
                  T* grad_w_ih, T* grad_w_hh, T* grad_b, T* grad_h0);

// y (n, dim) = rows of weight (num_embeddings, dim) at `indices` (n values in
// [0, num_embeddings), else std::out_of_range naming the first bad one).
template <typename T>
void embedding_forward(T* y, const T* weight, const int64_t* indices, int64_t n,
                       int64_t num_embeddings, int64_t dim);

// grad_weight (num_embeddings, dim) = zeros plus grad_y's row p added to row indices[p], for
// every p in increasing order (repeated indices sum their rows, deterministically, whatever the
// thread count). Row padding_idx (if in [0, num_embeddings); pass -1 for none) stays zero.
template <typename T>
void embedding_backward(T* grad_weight, const T* grad_y, const int64_t* indices, int64_t n,
                        int64_t num_embeddings, int64_t dim, int64_t padding_idx);

}  // namespace nnx
