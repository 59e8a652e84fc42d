// Differentiable fused RWKV ops: thin wrappers over kernels/rwkv_ops.h.
#include "autograd/rwkv_fused.h"

#include "autograd/node.h"
#include "kernels/rwkv_ops.h"

namespace rwkv::ag {

std::vector<Variable> time_mix(const Variable& x, const Variable& previous, const std::vector<Variable>& mixes) {
  const Tensor x_value = x.data(), previous_value = previous.defined() ? previous.data() : Tensor();
  std::vector<Tensor> mix_values;
  for (const Variable& mix : mixes) mix_values.push_back(mix.data());
  std::vector<Variable> inputs = {x, previous};
  inputs.insert(inputs.end(), mixes.begin(), mixes.end());
  return make_outputs("time_mix", ops::time_mix(x_value, previous_value, mix_values), inputs,
                      [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                        ops::TimeMixGrads grads = ops::time_mix_backward(g, x_value, previous_value, mix_values);
                        std::vector<Tensor> result = {grads.x, grads.previous};
                        result.insert(result.end(), grads.mixes.begin(), grads.mixes.end());
                        return result;
                      });
}

AddLayerNormResult add_layernorm(const Variable& x, const Variable& delta, const Variable& weight,
                                 const Variable& bias, double eps) {
  const bool has_delta = delta.defined();
  ops::AddLayerNormOutput out =
      ops::add_layernorm(x.data(), has_delta ? delta.data() : Tensor(), weight.data(), bias.data(), eps);
  // Backward needs the normalised input (the sum, or x), the weight and the saved statistics.
  const Tensor input = has_delta ? out.sum : x.data(), weight_value = weight.data(), mean = out.mean,
               rstd = out.rstd;
  std::vector<Tensor> values;
  if (has_delta) values.push_back(out.sum);
  values.push_back(out.y);
  std::vector<Variable> outputs = make_outputs(
      "add_layernorm", std::move(values), {x, delta, weight, bias},
      [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
        const Tensor& grad_sum = has_delta ? g[0] : Tensor();
        const Tensor& grad_y = has_delta ? g[1] : g[0];
        ops::AddLayerNormGrads grads = ops::add_layernorm_backward(grad_sum, grad_y, input, weight_value, mean, rstd);
        return {grads.input, has_delta ? grads.input : Tensor(), grads.weight, grads.bias};
      });
  if (has_delta) return {outputs[0], outputs[1]};
  return {Variable(), outputs[0]};
}

Variable sigmoid_mul(const Variable& gate, const Variable& value) {
  const Tensor gate_value = gate.data(), value_value = value.data();
  return make_output("sigmoid_mul", ops::sigmoid_mul(gate_value, value_value), {gate, value},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       ops::SigmoidMulGrads grads = ops::sigmoid_mul_backward(g[0], gate_value, value_value);
                       return {grads.gate, grads.value};
                     });
}

Variable relu_square(const Variable& x) {
  const Tensor x_value = x.data();
  return make_output("relu_square", ops::relu_square(x_value), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {ops::relu_square_backward(g[0], x_value)};
                     });
}

}  // namespace rwkv::ag
