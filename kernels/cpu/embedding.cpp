#include <cstring>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

template <typename T, typename Id>
void embedding_forward(const T* table, int64_t dim, const Id* ids, int64_t count, T* out) {
#pragma omp parallel for schedule(static) if (count * dim > (1 << 15))
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(out + i * dim, table + static_cast<int64_t>(ids[i]) * dim, static_cast<size_t>(dim) * sizeof(T));
  }
}

template <typename T, typename Id>
void embedding_backward(const T* grad_out, const Id* ids, int64_t count, int64_t vocab, int64_t dim, T* grad_table) {
  // Bucket positions by id (stable), then each id sums its rows in position order: deterministic for any thread
  // count, and no two threads write the same row.
  std::vector<int64_t> start(static_cast<size_t>(vocab) + 1, 0);
  for (int64_t i = 0; i < count; ++i) ++start[static_cast<size_t>(ids[i]) + 1];
  for (int64_t v = 0; v < vocab; ++v) start[static_cast<size_t>(v) + 1] += start[static_cast<size_t>(v)];
  std::vector<int64_t> positions(static_cast<size_t>(count));
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < count; ++i) positions[static_cast<size_t>(fill[static_cast<size_t>(ids[i])]++)] = i;

#pragma omp parallel for schedule(dynamic, 64) if (vocab * dim > (1 << 15))
  for (int64_t v = 0; v < vocab; ++v) {
    T* row = grad_table + v * dim;
    std::memset(row, 0, static_cast<size_t>(dim) * sizeof(T));
    for (int64_t p = start[static_cast<size_t>(v)]; p < start[static_cast<size_t>(v) + 1]; ++p) {
      const T* g = grad_out + positions[static_cast<size_t>(p)] * dim;
      for (int64_t c = 0; c < dim; ++c) row[c] += g[c];
    }
  }
}

#define RWKV_INSTANTIATE(T, Id)                                                                     \
  template void embedding_forward<T, Id>(const T*, int64_t, const Id*, int64_t, T*);                \
  template void embedding_backward<T, Id>(const T*, const Id*, int64_t, int64_t, int64_t, T*);
RWKV_INSTANTIATE(float, int32_t)
RWKV_INSTANTIATE(float, int64_t)
RWKV_INSTANTIATE(double, int32_t)
RWKV_INSTANTIATE(double, int64_t)
#undef RWKV_INSTANTIATE
}  // namespace rwkv::cpu
