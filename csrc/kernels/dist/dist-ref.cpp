// Scalar reference distance kernels, float and double.
#include <algorithm>
#include <cmath>

#include "dist/dist.h"

namespace nnx::kernels::ref {

template <typename T>
void l1_block(T* d, int64_t ldd, const T* q, int64_t nq, const T* r, int64_t nr, int64_t dim) {
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      T sum = 0;
      for (int64_t p = 0; p < dim; ++p) sum += std::abs(q[i * dim + p] - r[j * dim + p]);
      d[i * ldd + j] = sum;
    }
}

template <typename T>
void offer_row(T* best_d, int64_t* best_i, int64_t k, const T* row, int64_t n, int64_t j0, T add) {
  for (int64_t j = 0; j < n; ++j)
    offer_candidate(best_d, best_i, k, std::max(row[j] + add, T(0)), j0 + j);
}

template void l1_block<float>(float*, int64_t, const float*, int64_t, const float*, int64_t, int64_t);
template void l1_block<double>(double*, int64_t, const double*, int64_t, const double*, int64_t,
                               int64_t);
template void offer_row<float>(float*, int64_t*, int64_t, const float*, int64_t, int64_t, float);
template void offer_row<double>(double*, int64_t*, int64_t, const double*, int64_t, int64_t, double);

}  // namespace nnx::kernels::ref
