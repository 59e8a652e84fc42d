#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

template <typename T>
void sum_middle(const T* x, int64_t outer, int64_t n, int64_t inner, T* y) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * n > (1 << 15))
    for (int64_t o = 0; o < outer; ++o) {
      double total = 0;
      const T* row = x + o * n;
      for (int64_t i = 0; i < n; ++i) total += row[i];
      y[o] = static_cast<T>(total);
    }
    return;
  }
  // Reduce along a strided axis: each thread owns a block of output columns and walks the rows in order,
  // so the summation order (and the result) does not depend on the thread count.
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner > (1 << 15))
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t block = 0; block < (inner + 63) / 64; ++block) {
      const int64_t begin = block * 64, end = begin + 64 < inner ? begin + 64 : inner;
      double totals[64] = {};
      for (int64_t i = 0; i < n; ++i) {
        const T* row = x + (o * n + i) * inner;
        for (int64_t j = begin; j < end; ++j) totals[j - begin] += row[j];
      }
      for (int64_t j = begin; j < end; ++j) y[o * inner + j] = static_cast<T>(totals[j - begin]);
    }
  }
}

template void sum_middle<float>(const float*, int64_t, int64_t, int64_t, float*);
template void sum_middle<double>(const double*, int64_t, int64_t, int64_t, double*);

}  // namespace rwkv::cpu
