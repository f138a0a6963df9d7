// A parallel loop that is safe to throw from: the first exception thrown by any iteration is
// carried out of the OpenMP region and rethrown on the calling thread (letting it escape the
// region would terminate the program).
#pragma once

#include <cstdint>
#include <exception>
#include <mutex>

namespace nnx::runtime {

template <class Body>
void parallel_for(int64_t count, int threads, Body body) {
  std::exception_ptr error;
  std::mutex error_mutex;
  (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && count > 1)
  for (int64_t i = 0; i < count; ++i) {
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace nnx::runtime
