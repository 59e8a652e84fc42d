#include "autograd/checkpoint.h"

#include "autograd/node.h"

namespace rwkv::ag {

std::vector<Variable> checkpoint(const CheckpointFn& fn, const std::vector<Variable>& inputs) {
  std::vector<Variable> detached;
  std::vector<bool> input_requires_grad;
  for (const Variable& input : inputs) {
    detached.push_back(input.detach());
    input_requires_grad.push_back(input.requires_grad());
  }
  std::vector<Variable> first_run;
  {
    NoGradGuard no_grad;
    first_run = fn(detached);
  }
  std::vector<Tensor> values;
  for (const Variable& v : first_run) values.push_back(v.data());
  if (!grad_enabled()) {
    return first_run;
  }

  std::vector<Tensor> saved_inputs;
  for (const Variable& input : inputs) saved_inputs.push_back(input.data());
  // Parameters captured by fn also make the outputs differentiable, so every output gets the node whenever
  // recording is on; inputs that need no gradient simply get none.
  std::vector<Variable> graph_inputs = inputs;
  auto backward = [fn, saved_inputs, input_requires_grad](const std::vector<Tensor>& grads_out) -> std::vector<Tensor> {
    std::vector<Variable> leaves;
    for (size_t i = 0; i < saved_inputs.size(); ++i) leaves.emplace_back(saved_inputs[i], input_requires_grad[i]);
    std::vector<Variable> recomputed;
    {
      GradModeGuard recording(true);
      recomputed = fn(leaves);
    }
    RWKV_CHECK(recomputed.size() == grads_out.size(), "checkpoint: the recomputation returned ", recomputed.size(),
               " outputs, the first run ", grads_out.size());
    std::vector<Variable> roots;
    std::vector<Tensor> root_grads;
    for (size_t i = 0; i < recomputed.size(); ++i) {
      if (recomputed[i].requires_grad()) {
        roots.push_back(recomputed[i]);
        root_grads.push_back(grads_out[i]);
      }
    }
    if (!roots.empty()) run_backward(roots, root_grads, false);
    std::vector<Tensor> grads_in;
    for (const Variable& leaf : leaves) grads_in.push_back(leaf.requires_grad() ? leaf.grad() : Tensor());
    return grads_in;
  };
  auto node = std::make_shared<FunctionNode>("checkpoint", std::move(backward));
  for (const Variable& input : graph_inputs) {
    node->edges.push_back(Edge{input.gradient_node(), input.output_index()});
    node->inputs.push_back(TensorMeta::of(input.data()));
  }
  std::vector<Variable> outputs;
  for (size_t i = 0; i < values.size(); ++i) {
    node->outputs.push_back(TensorMeta::of(values[i]));
    outputs.push_back(Variable::from_node(values[i], node, static_cast<int>(i)));
  }
  return outputs;
}

}  // namespace rwkv::ag
