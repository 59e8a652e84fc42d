// Elementwise CUDA kernels (grid-stride loops). Each is a template over the storage type, float or
// __nv_bfloat16, with fp32 math: a bf16 element is widened on load and rounded to nearest even on store.
// Contracts as in kernels/cpu/kernels.h.
#include <cuda_bf16.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/float_io.cuh"
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

template <typename T>
__global__ void unary_kernel(Unary op, const T* x, T* y, int64_t n) {
  RWKV_GRID_STRIDE(i, n) store(y, i, apply_unary(op, load(x, i)));
}

template <typename T>
__global__ void unary_backward_kernel(Unary op, const T* g, const T* x, const T* y, T* out, int64_t n) {
  RWKV_GRID_STRIDE(i, n) {
    store(out, i, apply_unary_backward(op, load(g, i), x ? load(x, i) : 0.0f, y ? load(y, i) : 0.0f));
  }
}

template <typename T>
__global__ void binary_kernel(Binary op, const T* a, const T* b, int64_t b_period, T* out, int64_t n) {
  RWKV_GRID_STRIDE(i, n) store(out, i, apply_binary(op, load(a, i), load(b, i % b_period)));
}

template <typename T>
__global__ void binary_left_kernel(Binary op, const T* a, int64_t a_period, const T* b, T* out, int64_t n) {
  RWKV_GRID_STRIDE(i, n) store(out, i, apply_binary(op, load(a, i % a_period), load(b, i)));
}

template <typename T>
__global__ void affine_kernel(const T* x, float scale, float shift, T* y, int64_t n) {
  RWKV_GRID_STRIDE(i, n) store(y, i, load(x, i) * scale + shift);
}

template <typename X, typename Y>
__global__ void accumulate_kernel(const X* x, Y* y, int64_t n) {
  RWKV_GRID_STRIDE(i, n) store(y, i, load(y, i) + load(x, i));
}

}  // namespace

void unary(FloatIo io, Unary op, const void* x, void* y, int64_t n) {
  if (n == 0) return;
  dispatch_io(io, [&](auto zero) {
    using T = decltype(zero);
    unary_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(op, static_cast<const T*>(x),
                                                                     static_cast<T*>(y), n);
  });
  check_launch("cuda unary");
}

void unary_backward(FloatIo io, Unary op, const void* grad_out, const void* x, const void* y, void* grad_in,
                    int64_t n) {
  if (n == 0) return;
  dispatch_io(io, [&](auto zero) {
    using T = decltype(zero);
    unary_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(
        op, static_cast<const T*>(grad_out), static_cast<const T*>(x), static_cast<const T*>(y),
        static_cast<T*>(grad_in), n);
  });
  check_launch("cuda unary_backward");
}

void binary(FloatIo io, Binary op, const void* a, const void* b, int64_t b_period, void* out, int64_t n) {
  if (n == 0) return;
  dispatch_io(io, [&](auto zero) {
    using T = decltype(zero);
    binary_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(
        op, static_cast<const T*>(a), static_cast<const T*>(b), b_period, static_cast<T*>(out), n);
  });
  check_launch("cuda binary");
}

void binary_left_broadcast(FloatIo io, Binary op, const void* a, int64_t a_period, const void* b, void* out,
                           int64_t n) {
  if (n == 0) return;
  dispatch_io(io, [&](auto zero) {
    using T = decltype(zero);
    binary_left_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(
        op, static_cast<const T*>(a), a_period, static_cast<const T*>(b), static_cast<T*>(out), n);
  });
  check_launch("cuda binary_left_broadcast");
}

void affine(FloatIo io, const void* x, float scale, float shift, void* y, int64_t n) {
  if (n == 0) return;
  dispatch_io(io, [&](auto zero) {
    using T = decltype(zero);
    affine_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(static_cast<const T*>(x), scale, shift,
                                                                      static_cast<T*>(y), n);
  });
  check_launch("cuda affine");
}

void accumulate(FloatIo x_io, FloatIo y_io, const void* x, void* y, int64_t n) {
  RWKV_CHECK(x_io == y_io || (x_io == FloatIo::bf16 && y_io == FloatIo::f32),
             "cuda accumulate: an f32 value cannot be accumulated into a bf16 tensor");
  if (n == 0) return;
  dispatch_io(x_io, [&](auto x_zero) {
    dispatch_io(y_io, [&](auto y_zero) {
      using X = decltype(x_zero);
      using Y = decltype(y_zero);
      accumulate_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(static_cast<const X*>(x),
                                                                            static_cast<Y*>(y), n);
    });
  });
  check_launch("cuda accumulate");
}

}  // namespace rwkv::cuda_kernels
