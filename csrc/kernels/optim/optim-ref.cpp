// Scalar reference optimizer updates (PyTorch's formulas), float and double.
#include <cmath>

#include "optim/optim.h"

namespace nnx::kernels::ref {

template <typename T>
void sgd_step(T* param, T* buf, const T* grad, int64_t n, const SgdParams& p, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i] + T(p.weight_decay) * param[i];
    if (p.momentum != 0) {
      buf[i] = p.first_step ? g : T(p.momentum) * buf[i] + (1 - T(p.dampening)) * g;
      g = p.nesterov ? g + T(p.momentum) * buf[i] : buf[i];
    }
    param[i] -= T(p.lr) * g;
  }
}

template <typename T>
void adam_step(T* param, T* m, T* v, const T* grad, int64_t n, const AdamParams& p, int threads) {
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (p.decoupled) param[i] *= 1 - T(p.lr) * T(p.weight_decay);
    else g += T(p.weight_decay) * param[i];
    m[i] = T(p.beta1) * m[i] + (1 - T(p.beta1)) * g;
    v[i] = T(p.beta2) * v[i] + (1 - T(p.beta2)) * g * g;
    const T m_hat = m[i] / T(p.bias_correction1), v_hat = v[i] / T(p.bias_correction2);
    param[i] -= T(p.lr) * m_hat / (std::sqrt(v_hat) + T(p.eps));
  }
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += double(x[i]) * double(x[i]);
  return total;
}

template void sgd_step<float>(float*, float*, const float*, int64_t, const SgdParams&, int);
template void sgd_step<double>(double*, double*, const double*, int64_t, const SgdParams&, int);
template void adam_step<float>(float*, float*, float*, const float*, int64_t, const AdamParams&, int);
template void adam_step<double>(double*, double*, double*, const double*, int64_t,
                                const AdamParams&, int);
template double sum_squares<float>(const float*, int64_t);
template double sum_squares<double>(const double*, int64_t);

}  // namespace nnx::kernels::ref
