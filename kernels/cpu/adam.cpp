#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bias_correction1, float bias_correction2,
               bool scale_grad, float grad_scale) {
  const float inv_bias1 = 1.0f / bias_correction1;
  const float inv_sqrt_bias2 = 1.0f / std::sqrt(bias_correction2);
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const float g = scale_grad ? grad[i] * grad_scale + 0.0f : grad[i];
    const float m = beta1 * exp_avg[i] + (1.0f - beta1) * g;
    const float v = beta2 * exp_avg_sq[i] + (1.0f - beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    // eps is added after the bias-corrected square root (spec §4.1).
    const float update = (m * inv_bias1) / (std::sqrt(v) * inv_sqrt_bias2 + eps) + weight_decay * param[i];
    param[i] -= lr * update;
  }
}

double sum_of_squares(const float* x, int64_t n) {
  // Fixed-size chunks summed in order: the result does not depend on the thread count.
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t c = 0; c < chunks; ++c) {
    double total = 0;
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) total += static_cast<double>(x[i]) * x[i];
    partial[static_cast<size_t>(c)] = total;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace rwkv::cpu
