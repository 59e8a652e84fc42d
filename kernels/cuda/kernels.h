// CUDA kernels: the same contracts as kernels/cpu/kernels.h, over device pointers, on the current stream of
// the device that owns the pointers. fp32 here; bf16 variants arrive with mixed precision.
#pragma once

#include <cstdint>

#include "kernels/op_kinds.h"

namespace rwkv::cuda_kernels {

void unary(Unary op, const float* x, float* y, int64_t n);
void unary_backward(Unary op, const float* grad_out, const float* x, const float* y, float* grad_in, int64_t n);
void binary(Binary op, const float* a, const float* b, int64_t b_period, float* out, int64_t n);
void binary_left_broadcast(Binary op, const float* a, int64_t a_period, const float* b, float* out, int64_t n);
void affine(const float* x, float scale, float shift, float* y, int64_t n);
void accumulate(const float* x, float* y, int64_t n);

}  // namespace rwkv::cuda_kernels
