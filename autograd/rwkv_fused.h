// Differentiable fused RWKV ops (kernels/rwkv_ops.h): each equals a composition of the ops in functions.h, in
// one kernel per direction, and keeps only what its backward needs.
#pragma once

#include <vector>

#include "autograd/variable.h"

namespace rwkv::ag {

// x [B, T, C] shifted one step along time (t = 0: `previous` [B, C], or zeros when undefined) and mixed with x by
// each of 1 to 3 mixes [C]: out[i] = x * mixes[i] + shifted * (1 - mixes[i]).
std::vector<Variable> time_mix(const Variable& x, const Variable& previous, const std::vector<Variable>& mixes);

// sum = x + delta and y = layernorm(sum, weight, bias, eps); with delta undefined, y = layernorm(x) and sum is
// undefined. Gradients arriving at sum and at y both flow back to x and delta.
struct AddLayerNormResult {
  Variable sum, y;
};
AddLayerNormResult add_layernorm(const Variable& x, const Variable& delta, const Variable& weight,
                                 const Variable& bias, double eps = 1e-5);

Variable sigmoid_mul(const Variable& gate, const Variable& value);  // sigmoid(gate) * value
Variable relu_square(const Variable& x);                            // square(relu(x))

}  // namespace rwkv::ag
