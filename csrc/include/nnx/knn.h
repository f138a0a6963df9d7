// Public C++ API of nnx's k-nearest-neighbour search: for each query row, the k nearest rows of a
// reference matrix, found block by block so that the query x reference distance matrix never
// exists whole.
#pragma once

#include <cstdint>
#include <string>

namespace nnx {

// l2: squared Euclidean distance, through the GEMM identity |q - r|^2 = |q|^2 + |r|^2 - 2 q.r
// (clamped at 0 against rounding). l1: sum of absolute differences.
enum class Metric { l1, l2 };
Metric parse_metric(const std::string& name);  // "l1" or "l2", else std::invalid_argument
const char* metric_name(Metric metric);

// queries (num_queries x dim) and refs (num_refs x dim), row-major. Writes indices and distances,
// each (num_queries x k): row i lists the k references nearest to query i by ascending distance,
// equal distances by ascending reference index. Results do not depend on the thread count.
// std::invalid_argument for sizes outside 1 <= k <= num_refs, dim >= 1, or a non-finite input;
// std::overflow_error if distances overflow T.
template <typename T>
void knn_search(int64_t* indices, T* distances, const T* queries, int64_t num_queries,
                const T* refs, int64_t num_refs, int64_t dim, int64_t k, Metric metric);

}  // namespace nnx
