// CUDA kernels of the fused RWKV ops (contracts: kernels/cpu/rwkv_fused.h and kernels/rwkv_ops.h), over device
// pointers, on the current stream of the current device. Activations have the FloatIo type (f32 or bf16);
// per-channel parameters, their gradients and the layernorm statistics are fp32; all math is fp32. Kernels use
// 16-byte vector accesses when the channel count (element count for the elementwise ops) is a multiple of the
// vector width (4 f32, 8 bf16) and every pointer is 16-byte aligned, scalar ones otherwise. Parameter gradients
// are per-block partials over fixed row chunks, summed in chunk order: results are deterministic.
#pragma once

#include <cstdint>

#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

inline constexpr int kMaxTimeMixes = 3;

struct TimeMixForwardArgs {
  int64_t batch, time, channels;
  FloatIo io;
  const void* x;         // [batch, time, channels]
  const void* previous;  // [batch, channels] or null (zeros)
  int count;             // 1 to kMaxTimeMixes
  const float* mixes[kMaxTimeMixes];
  void* outs[kMaxTimeMixes];
};
void time_mix_forward(const TimeMixForwardArgs& args);

struct TimeMixBackwardArgs {
  int64_t batch, time, channels;
  FloatIo io;
  int count;
  const void* grad_outs[kMaxTimeMixes];
  const void* x;
  const void* previous;  // or null
  const float* mixes[kMaxTimeMixes];
  void* grad_x;
  void* grad_previous;  // written when previous is given
  float* grad_mixes[kMaxTimeMixes];
};
void time_mix_backward(const TimeMixBackwardArgs& args);

// Over [rows, cols]: sum = x + delta (delta null: no sum, the input is x), y = layernorm(input) * weight + bias.
void add_layernorm_forward(FloatIo io, const void* x, const void* delta, const float* weight, const float* bias,
                           int64_t rows, int64_t cols, float eps, void* sum, void* y, float* mean, float* rstd);
// grad_input = layernorm's input gradient + grad_sum (null: none); grad_weight and grad_bias are overwritten.
void add_layernorm_backward(FloatIo io, const void* grad_sum, const void* grad_y, const void* input,
                            const float* weight, const float* mean, const float* rstd, int64_t rows, int64_t cols,
                            void* grad_input, float* grad_weight, float* grad_bias);

void sigmoid_mul_forward(FloatIo io, const void* gate, const void* value, int64_t n, void* out);
void sigmoid_mul_backward(FloatIo io, const void* grad_out, const void* gate, const void* value, int64_t n,
                          void* grad_gate, void* grad_value);

void relu_square_forward(FloatIo io, const void* x, int64_t n, void* out);
void relu_square_backward(FloatIo io, const void* grad_out, const void* x, int64_t n, void* grad_x);

}  // namespace rwkv::cuda_kernels
