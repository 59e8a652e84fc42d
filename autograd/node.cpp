#include "autograd/node.h"

#include "kernels/ops.h"

namespace rwkv::ag {

std::vector<Tensor> FunctionNode::apply(const std::vector<Tensor>& grads_out) {
  RWKV_CHECK(backward_ != nullptr, "backward: ", name_, " was already differentiated and its saved tensors freed; ",
             "pass retain_graph = true to differentiate a graph twice");
  return backward_(grads_out);
}

std::vector<Tensor> AccumulateGrad::apply(const std::vector<Tensor>& grads_out) {
  const std::shared_ptr<VariableImpl> leaf = leaf_.lock();
  if (!leaf) return {};  // the leaf is gone: nobody can read its gradient
  const Tensor& incoming = grads_out.at(0);
  if (!leaf->grad.defined()) {
    leaf->grad = incoming.clone();  // own the buffer: later accumulation must not write into a shared tensor
  } else {
    ops::accumulate_(leaf->grad, incoming);
  }
  if (leaf->on_grad_accumulated) leaf->on_grad_accumulated();
  return {};
}

bool any_requires_grad(const std::vector<Variable>& inputs) {
  for (const Variable& v : inputs) {
    if (v.defined() && v.requires_grad()) return true;
  }
  return false;
}

std::vector<Variable> make_outputs(const std::string& name, std::vector<Tensor> values,
                                   const std::vector<Variable>& inputs, BackwardFn backward) {
  std::vector<Variable> outputs;
  outputs.reserve(values.size());
  if (!grad_enabled() || !any_requires_grad(inputs)) {
    for (Tensor& value : values) outputs.emplace_back(std::move(value), false);
    return outputs;
  }
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  for (const Variable& input : inputs) {
    node->edges.push_back(Edge{input.defined() ? input.gradient_node() : nullptr,
                               input.defined() ? input.output_index() : 0});
    node->inputs.push_back(input.defined() ? TensorMeta::of(input.data()) : TensorMeta{});
  }
  for (size_t i = 0; i < values.size(); ++i) {
    node->outputs.push_back(TensorMeta::of(values[i]));
    outputs.push_back(Variable::from_node(std::move(values[i]), node, static_cast<int>(i)));
  }
  return outputs;
}

Variable make_output(const std::string& name, Tensor value, const std::vector<Variable>& inputs,
                     BackwardFn backward) {
  std::vector<Tensor> values;
  values.push_back(std::move(value));
  return make_outputs(name, std::move(values), inputs, std::move(backward))[0];
}

}  // namespace rwkv::ag
