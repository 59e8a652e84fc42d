#include "autograd/nn/module.h"

#include "autograd/functions.h"
#include "autograd/mixed_precision.h"
#include "autograd/rwkv_fused.h"

namespace rwkv::ag::nn {

std::vector<std::pair<std::string, Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Variable>> all = parameters_;
  for (const auto& [prefix, child] : children_) {
    for (auto& [name, parameter] : child->named_parameters()) all.emplace_back(prefix + "." + name, parameter);
  }
  return all;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> all;
  for (auto& [name, parameter] : named_parameters()) all.push_back(parameter);
  return all;
}

void Module::zero_grad() {
  for (Variable& parameter : parameters()) parameter.zero_grad();
}

void Module::to(Device device) {
  for (Variable& parameter : parameters()) {
    parameter.mutable_data() = parameter.data().to(device);
    parameter.zero_grad();
  }
}

Variable Module::register_parameter(const std::string& name, Tensor value) {
  for (const auto& [existing, parameter] : parameters_) {
    RWKV_CHECK(existing != name, "Module: parameter '", name, "' registered twice");
  }
  Variable parameter(std::move(value), true);
  parameters_.emplace_back(name, parameter);
  return parameter;
}

Linear::Linear(int64_t in_features, int64_t out_features)
    : weight_(register_parameter("weight", Tensor::zeros({out_features, in_features}))) {}

Variable Linear::forward(const Variable& x) const {
  const int64_t in = weight_.size(1);
  RWKV_CHECK(x.size(-1) == in, "Linear: input ", x.describe(), " does not end in ", in, " features");
  // Mixed precision: a bf16 input reads a bf16 copy of the fp32 weight (fp32 accumulation, fp32 dweight).
  if (x.data().dtype() == DType::bf16 && weight_.data().dtype() != DType::bf16) return linear_bf16(x, weight_);
  if (x.dim() == 2) return matmul(x, weight_, false, true);
  Shape flat_shape{x.data().numel() / in, in};
  Shape out_shape = x.shape();
  out_shape.back() = weight_.size(0);
  return reshape(matmul(reshape(x, flat_shape), weight_, false, true), out_shape);
}

LayerNorm::LayerNorm(int64_t features)
    : weight_(register_parameter("weight", Tensor::full({features}, 1.0))),
      bias_(register_parameter("bias", Tensor::zeros({features}))) {}

// The fused kernel: one pass, statistics in fp32 (f64 for f64), bf16 inputs with the fp32 weight and bias.
Variable LayerNorm::forward(const Variable& x) const { return add_layernorm(x, Variable(), weight_, bias_, 1e-5).y; }

LayerNorm::Output LayerNorm::forward_with_residual(const Variable& x, const Variable& delta) const {
  AddLayerNormResult result = add_layernorm(x, delta, weight_, bias_, 1e-5);
  return {result.sum, result.y};
}

Embedding::Embedding(int64_t vocab, int64_t dim) : weight_(register_parameter("weight", Tensor::zeros({vocab, dim}))) {}

Variable Embedding::forward(const Tensor& ids) const { return embedding(weight_, ids); }

}  // namespace rwkv::ag::nn
