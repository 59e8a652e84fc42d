// Fused RWKV-4 ops: each replaces a chain of small elementwise ops of the training step with one pass (one kernel
// launch on the GPU). Results equal the compositions named below up to rounding. Activations are f32, bf16 (CPU
// and CUDA; math in fp32, outputs rounded to nearest even) or f64 (CPU, for gradient checks); per-channel
// parameters (mixes, layernorm weight and bias) and their gradients are f32, or f64 with f64 activations.
// Parameter gradients are summed over batch and time in a fixed order (deterministic).
#pragma once

#include <vector>

#include "core/tensor.h"

namespace rwkv::ops {

// Token shift + the time-mix interpolations (spec §1.3/§1.4): with xx = x shifted one step along time (xx[:, 0]
// = previous, or zeros when previous is undefined), out[i] = x * mixes[i] + xx * (1 - mixes[i]).
// x [B, T, C]; previous [B, C] (x's dtype) or undefined; 1 to 3 mixes, each [C]. Outputs have x's dtype.
// Composition: token_shift + binary mul/add + 1 - mix.
std::vector<Tensor> time_mix(const Tensor& x, const Tensor& previous, const std::vector<Tensor>& mixes);
struct TimeMixGrads {
  Tensor x, previous;  // previous undefined when it was
  std::vector<Tensor> mixes;
};
// One gradient per output (all defined, x's dtype and shape).
TimeMixGrads time_mix_backward(const std::vector<Tensor>& grad_outs, const Tensor& x, const Tensor& previous,
                               const std::vector<Tensor>& mixes);

// Residual add + layernorm: sum = x + delta, y = layernorm(sum) * weight + bias (biased variance, eps), statistics
// in fp32 (f64 for f64) of the stored (rounded) sum. delta undefined = plain layernorm of x (sum is then
// undefined). x, delta [..., C]. Composition: binary add + layernorm.
struct AddLayerNormOutput {
  Tensor sum, y, mean, rstd;  // mean, rstd: one per row, f32 (f64)
};
AddLayerNormOutput add_layernorm(const Tensor& x, const Tensor& delta, const Tensor& weight, const Tensor& bias,
                                 double eps);
// grad_sum (may be undefined) is the gradient arriving at `sum`; returns the gradient of sum's inputs (the same
// tensor for x and delta), of weight and of bias. `input` is sum (or x when there was no delta).
struct AddLayerNormGrads {
  Tensor input, weight, bias;
};
AddLayerNormGrads add_layernorm_backward(const Tensor& grad_sum, const Tensor& grad_y, const Tensor& input,
                                         const Tensor& weight, const Tensor& mean, const Tensor& rstd);

// sigmoid(gate) * value, same shapes and dtype (composition: sigmoid + mul).
Tensor sigmoid_mul(const Tensor& gate, const Tensor& value);
struct SigmoidMulGrads {
  Tensor gate, value;
};
SigmoidMulGrads sigmoid_mul_backward(const Tensor& grad_out, const Tensor& gate, const Tensor& value);

// square(relu(x)) (composition: relu + square).
Tensor relu_square(const Tensor& x);
Tensor relu_square_backward(const Tensor& grad_out, const Tensor& x);

}  // namespace rwkv::ops
