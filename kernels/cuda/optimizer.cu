// Optimizer support: the fused Adam update (elementwise, same formula and order as cpu::adam_step) and the sum
// of squares for the gradient norm (double, fixed chunks added in order: deterministic).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 16384;  // elements per block in the sum of squares

__global__ void adam_kernel(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay, float inv_bias1,
                            float inv_sqrt_bias2) {
  RWKV_GRID_STRIDE(i, n) {
    const float g = grad[i];
    const float m = beta1 * exp_avg[i] + (1.0f - beta1) * g;
    const float v = beta2 * exp_avg_sq[i] + (1.0f - beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    // eps is added after the bias-corrected square root (spec §4.1).
    const float update = (m * inv_bias1) / (sqrtf(v) * inv_sqrt_bias2 + eps) + weight_decay * param[i];
    param[i] -= lr * update;
  }
}

__global__ void squares_partial_kernel(const float* x, int64_t n, int64_t chunks, double* partials) {
  __shared__ double shared[32];
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const int64_t begin = chunk * kChunk, end = begin + kChunk < n ? begin + kChunk : n;
    double total = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) total += static_cast<double>(x[i]) * x[i];
    total = block_sum(total, shared);
    if (threadIdx.x == 0) partials[chunk] = total;
  }
}

__global__ void ordered_total_kernel(const double* partials, int64_t count, double* total) {
  __shared__ double shared[32];
  double sum = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) *total = sum;
}

}  // namespace

void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bias_correction1, float bias_correction2) {
  if (n == 0) return;
  adam_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(param, grad, exp_avg, exp_avg_sq, n, lr, beta1,
                                                                   beta2, eps, weight_decay, 1.0f / bias_correction1,
                                                                   1.0f / sqrtf(bias_correction2));
  check_launch("cuda adam_step");
}

double sum_of_squares(const float* x, int64_t n) {
  if (n == 0) return 0.0;
  const cudaStream_t s = stream();
  const int64_t chunks = ceil_div(n, kChunk);
  Scratch partials(static_cast<size_t>(chunks + 1) * sizeof(double));
  double* total = partials.as<double>() + chunks;
  squares_partial_kernel<<<blocks_for(chunks, 1, kMaxGridX), kThreads, 0, s>>>(x, n, chunks, partials.as<double>());
  check_launch("cuda sum_of_squares (chunks)");
  ordered_total_kernel<<<1, 1024, 0, s>>>(partials.as<double>(), chunks, total);
  check_launch("cuda sum_of_squares (total)");
  double host = 0;
  check_cuda(cudaMemcpyAsync(&host, total, sizeof(host), cudaMemcpyDeviceToHost, s), "cuda sum_of_squares (copy)");
  check_cuda(cudaStreamSynchronize(s), "cuda sum_of_squares (synchronize)");
  return host;
}

}  // namespace rwkv::cuda_kernels
