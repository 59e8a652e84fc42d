#include <cmath>

#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

template <typename T, typename Id>
double cross_entropy_forward(const T* logits, const Id* targets, int64_t rows, int64_t vocab, T* logsumexp) {
  double total = 0;
  // Per-row losses are summed in row order after the parallel part, so the mean is thread-count independent.
#pragma omp parallel for schedule(static) if (rows * vocab > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * vocab;
    double peak = row[0];
    for (int64_t v = 1; v < vocab; ++v) peak = row[v] > peak ? static_cast<double>(row[v]) : peak;
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - peak);
    logsumexp[r] = static_cast<T>(peak + std::log(sum));
  }
  for (int64_t r = 0; r < rows; ++r) {
    total += static_cast<double>(logsumexp[r]) - static_cast<double>(logits[r * vocab + targets[r]]);
  }
  return total / static_cast<double>(rows);
}

template <typename T, typename Id>
void cross_entropy_backward(const T* logits, const Id* targets, const T* logsumexp, int64_t rows, int64_t vocab,
                            T scale, T* grad_logits) {
#pragma omp parallel for schedule(static) if (rows * vocab > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * vocab;
    T* g = grad_logits + r * vocab;
    const double lse = logsumexp[r];
    for (int64_t v = 0; v < vocab; ++v) g[v] = static_cast<T>(scale * std::exp(static_cast<double>(row[v]) - lse));
    g[targets[r]] -= scale;
  }
}

template <typename T>
void l2wrap_backward(const T* logits, int64_t rows, int64_t vocab, T factor, T* grad_logits) {
#pragma omp parallel for schedule(static) if (rows * vocab > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * vocab;
    int64_t best = 0;
    for (int64_t v = 1; v < vocab; ++v) best = row[v] > row[best] ? v : best;
    grad_logits[r * vocab + best] += factor * row[best];
  }
}

#define RWKV_INSTANTIATE(T, Id)                                                                           \
  template double cross_entropy_forward<T, Id>(const T*, const Id*, int64_t, int64_t, T*);                \
  template void cross_entropy_backward<T, Id>(const T*, const Id*, const T*, int64_t, int64_t, T, T*);
RWKV_INSTANTIATE(float, int32_t)
RWKV_INSTANTIATE(float, int64_t)
RWKV_INSTANTIATE(double, int32_t)
RWKV_INSTANTIATE(double, int64_t)
#undef RWKV_INSTANTIATE
template void l2wrap_backward<float>(const float*, int64_t, int64_t, float, float*);
template void l2wrap_backward<double>(const double*, int64_t, int64_t, double, double*);

}  // namespace rwkv::cpu
