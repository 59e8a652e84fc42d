// CPU kernels of the fused RWKV ops (contracts: kernels/rwkv_ops.h), over contiguous row-major buffers.
// Activations T are float, double or BFloat16; per-channel parameters and all math use fused_param_t<T>: float
// for float and BFloat16, double for double. BFloat16 results round to nearest even.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace rwkv::cpu {

template <typename T>
struct FusedParam {
  using type = float;
};
template <>
struct FusedParam<double> {
  using type = double;
};
template <typename T>
using fused_param_t = typename FusedParam<T>::type;

// x [batch, time, channels]; previous [batch, channels] or null (zeros); `count` (1 to 3) mixes [channels] and
// as many outputs.
template <typename T>
void time_mix_forward(const T* x, const T* previous, int64_t batch, int64_t time, int64_t channels,
                      const fused_param_t<T>* const* mixes, int count, T* const* outs);
// grad_previous is written when previous is given; grad_mixes are overwritten (summed over batch and time).
template <typename T>
void time_mix_backward(const T* const* grad_outs, const T* x, const T* previous, int64_t batch, int64_t time,
                       int64_t channels, const fused_param_t<T>* const* mixes, int count, T* grad_x, T* grad_previous,
                       fused_param_t<T>* const* grad_mixes);

// Over [rows, cols]: sum = x + delta (skipped when delta is null: the input is x), y = layernorm(input).
template <typename T>
void add_layernorm_forward(const T* x, const T* delta, const fused_param_t<T>* weight, const fused_param_t<T>* bias,
                           int64_t rows, int64_t cols, double eps, T* sum, T* y, fused_param_t<T>* mean,
                           fused_param_t<T>* rstd);
// grad_input = layernorm's input gradient + grad_sum (null: none); grad_weight and grad_bias are overwritten.
template <typename T>
void add_layernorm_backward(const T* grad_sum, const T* grad_y, const T* input, const fused_param_t<T>* weight,
                            const fused_param_t<T>* mean, const fused_param_t<T>* rstd, int64_t rows, int64_t cols,
                            T* grad_input, fused_param_t<T>* grad_weight, fused_param_t<T>* grad_bias);

template <typename T>
void sigmoid_mul_forward(const T* gate, const T* value, int64_t n, T* out);
template <typename T>
void sigmoid_mul_backward(const T* grad_out, const T* gate, const T* value, int64_t n, T* grad_gate, T* grad_value);

template <typename T>
void relu_square_forward(const T* x, int64_t n, T* out);
template <typename T>
void relu_square_backward(const T* grad_out, const T* x, int64_t n, T* grad_x);

}  // namespace rwkv::cpu
