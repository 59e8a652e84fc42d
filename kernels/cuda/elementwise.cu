// Elementwise CUDA kernels (grid-stride loops; fp32). Contracts as in kernels/cpu/kernels.h.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

constexpr int kThreads = 256;

__device__ float apply_unary(Unary op, float x) {
  switch (op) {
    case Unary::neg: return -x;
    case Unary::exp: return expf(x);
    case Unary::sigmoid: return 1.0f / (1.0f + expf(-x));
    case Unary::relu: return x > 0.0f ? x : 0.0f;
    case Unary::square: return x * x;
  }
  return 0.0f;
}

__device__ float apply_unary_backward(Unary op, float g, float x, float y) {
  switch (op) {
    case Unary::neg: return -g;
    case Unary::exp: return g * y;
    case Unary::sigmoid: return g * y * (1.0f - y);
    case Unary::relu: return x > 0.0f ? g : 0.0f;
    case Unary::square: return 2.0f * x * g;
  }
  return 0.0f;
}

__device__ float apply_binary(Binary op, float a, float b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div: return a / b;
  }
  return 0.0f;
}

__global__ void unary_kernel(Unary op, const float* x, float* y, int64_t n) {
  RWKV_GRID_STRIDE(i, n) y[i] = apply_unary(op, x[i]);
}

__global__ void unary_backward_kernel(Unary op, const float* g, const float* x, const float* y, float* out,
                                      int64_t n) {
  RWKV_GRID_STRIDE(i, n) out[i] = apply_unary_backward(op, g[i], x ? x[i] : 0.0f, y ? y[i] : 0.0f);
}

__global__ void binary_kernel(Binary op, const float* a, const float* b, int64_t b_period, float* out, int64_t n) {
  RWKV_GRID_STRIDE(i, n) out[i] = apply_binary(op, a[i], b[i % b_period]);
}

__global__ void binary_left_kernel(Binary op, const float* a, int64_t a_period, const float* b, float* out,
                                   int64_t n) {
  RWKV_GRID_STRIDE(i, n) out[i] = apply_binary(op, a[i % a_period], b[i]);
}

__global__ void affine_kernel(const float* x, float scale, float shift, float* y, int64_t n) {
  RWKV_GRID_STRIDE(i, n) y[i] = x[i] * scale + shift;
}

__global__ void accumulate_kernel(const float* x, float* y, int64_t n) { RWKV_GRID_STRIDE(i, n) y[i] += x[i]; }

}  // namespace

void unary(Unary op, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  unary_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(op, x, y, n);
  check_launch("cuda unary");
}

void unary_backward(Unary op, const float* grad_out, const float* x, const float* y, float* grad_in, int64_t n) {
  if (n == 0) return;
  unary_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(op, grad_out, x, y, grad_in, n);
  check_launch("cuda unary_backward");
}

void binary(Binary op, const float* a, const float* b, int64_t b_period, float* out, int64_t n) {
  if (n == 0) return;
  binary_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(op, a, b, b_period, out, n);
  check_launch("cuda binary");
}

void binary_left_broadcast(Binary op, const float* a, int64_t a_period, const float* b, float* out, int64_t n) {
  if (n == 0) return;
  binary_left_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(op, a, a_period, b, out, n);
  check_launch("cuda binary_left_broadcast");
}

void affine(const float* x, float scale, float shift, float* y, int64_t n) {
  if (n == 0) return;
  affine_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(x, scale, shift, y, n);
  check_launch("cuda affine");
}

void accumulate(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  accumulate_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(x, y, n);
  check_launch("cuda accumulate");
}

}  // namespace rwkv::cuda_kernels
