// Token shift along time of [batch, time, channels] and its backward: one grid-stride pass each.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

constexpr int kThreads = 256;

__global__ void token_shift_kernel(const float* x, const float* previous, int64_t time, int64_t channels,
                                   int64_t total, float* out) {
  RWKV_GRID_STRIDE(i, total) {
    const int64_t t = (i / channels) % time;
    if (t > 0) {
      out[i] = x[i - channels];
    } else {
      out[i] = previous ? previous[(i / (time * channels)) * channels + i % channels] : 0.0f;
    }
  }
}

__global__ void token_shift_backward_kernel(const float* grad_out, int64_t time, int64_t channels, int64_t total,
                                            float* grad_x) {
  RWKV_GRID_STRIDE(i, total) {
    const int64_t t = (i / channels) % time;
    grad_x[i] = t + 1 < time ? grad_out[i + channels] : 0.0f;
  }
}

}  // namespace

void token_shift(const float* x, const float* previous, int64_t batch, int64_t time, int64_t channels, float* out) {
  const int64_t total = batch * time * channels;
  if (total == 0) return;
  token_shift_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream()>>>(x, previous, time, channels, total, out);
  check_launch("cuda token_shift");
}

void token_shift_backward(const float* grad_out, int64_t batch, int64_t time, int64_t channels, float* grad_x) {
  const int64_t total = batch * time * channels;
  if (total == 0) return;
  token_shift_backward_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream()>>>(grad_out, time, channels, total,
                                                                                       grad_x);
  check_launch("cuda token_shift_backward");
}

}  // namespace rwkv::cuda_kernels
