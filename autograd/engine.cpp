// The backward engine: orders the graph once (dependency counts), walks it from the roots, sums the gradients
// arriving at each node (each in the dtype of the tensor it belongs to), and frees each node's saved tensors right
// after it ran (unless retain_graph).
#include <unordered_map>

#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

namespace {

Tensor ones_like_meta(const TensorMeta& meta) { return Tensor::full(meta.shape, 1.0, meta.dtype, meta.device); }

// The gradients that arrived so far at one output of a node (or at a leaf), and the dtype the node expects.
// bf16 gradients of one tensor are summed in fp32 and rounded once when the node runs; any other gradient is
// converted to the expected dtype on arrival (e.g. a bf16 gradient of an fp32 leaf).
struct PendingGradient {
  Tensor sum;
  DType dtype = DType::f32;
};

void add_into(PendingGradient& slot, const Tensor& incoming, DType dtype) {
  slot.dtype = dtype;
  if (!slot.sum.defined()) {
    slot.sum = dtype == DType::bf16 ? incoming : incoming.to(dtype);
  } else if (dtype == DType::bf16) {
    slot.sum = ops::binary(Binary::add, slot.sum.to(DType::f32), incoming.to(DType::f32));
  } else {
    // A fresh buffer: `slot.sum` may alias another node's tensor.
    slot.sum = ops::binary(Binary::add, slot.sum, incoming.to(dtype));
  }
}

Tensor take(PendingGradient& slot) {
  Tensor sum = std::move(slot.sum);
  return sum.defined() ? sum.to(slot.dtype) : sum;
}

}  // namespace

void run_backward(const std::vector<Variable>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  RWKV_CHECK(roots.size() == grads.size(), "backward: ", roots.size(), " roots but ", grads.size(), " gradients");
  std::unordered_map<Node*, std::vector<PendingGradient>> pending;  // gradients waiting at each node, per output
  std::unordered_map<Node*, int> dependencies;             // edges into each node not yet processed
  std::vector<std::shared_ptr<Node>> ready;

  // Seed the roots.
  std::vector<std::shared_ptr<Node>> root_nodes;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Variable& root = roots[i];
    RWKV_CHECK(root.defined() && root.requires_grad(), "backward: the output ",
               root.defined() ? root.describe() : "undefined",
               " does not require a gradient (no input of its graph requires one)");
    Tensor grad = grads[i];
    if (!grad.defined()) {
      RWKV_CHECK(root.data().numel() == 1, "backward: a gradient must be given for the non-scalar output ",
                 root.describe());
      grad = ones_like_meta(TensorMeta::of(root.data()));
    }
    RWKV_CHECK(grad.shape() == root.shape(), "backward: gradient ", grad.describe(), " does not match output ",
               root.describe());
    std::shared_ptr<Node> node = root.gradient_node();
    auto& slots = pending[node.get()];
    slots.resize(std::max<size_t>(slots.size(), node->outputs.empty() ? 1 : node->outputs.size()));
    add_into(slots[static_cast<size_t>(root.output_index())], grad, root.data().dtype());
    root_nodes.push_back(node);
  }

  // Count, for every reachable node, how many edges point at it.
  {
    std::vector<Node*> stack;
    std::unordered_map<Node*, bool> seen;
    for (const auto& node : root_nodes) {
      if (!seen[node.get()]) {
        seen[node.get()] = true;
        stack.push_back(node.get());
      }
    }
    while (!stack.empty()) {
      Node* node = stack.back();
      stack.pop_back();
      for (const Edge& edge : node->edges) {
        if (!edge.node) continue;
        ++dependencies[edge.node.get()];
        if (!seen[edge.node.get()]) {
          seen[edge.node.get()] = true;
          stack.push_back(edge.node.get());
        }
      }
    }
  }
  for (const auto& node : root_nodes) {
    if (dependencies[node.get()] == 0) {
      dependencies[node.get()] = -1;  // queued
      ready.push_back(node);
    }
  }

  // Walk in dependency order (FIFO, so the order is deterministic).
  for (size_t next = 0; next < ready.size(); ++next) {
    std::shared_ptr<Node> node = ready[next];
    std::vector<Tensor> grads_out;
    for (PendingGradient& slot : pending[node.get()]) grads_out.push_back(take(slot));
    pending.erase(node.get());
    grads_out.resize(std::max<size_t>(node->outputs.size(), 1));
    bool any_gradient = false;
    for (const Tensor& g : grads_out) any_gradient = any_gradient || g.defined();
    if (!any_gradient) {
      // Every path into this node carried no gradient: skip it, but unblock its inputs so the walk completes.
      if (!retain_graph) node->release();
      for (const Edge& edge : node->edges) {
        if (edge.node && --dependencies[edge.node.get()] == 0) ready.push_back(edge.node);
      }
      continue;
    }
    for (size_t i = 0; i < node->outputs.size(); ++i) {
      if (!grads_out[i].defined()) grads_out[i] = Tensor::zeros(node->outputs[i].shape, node->outputs[i].dtype,
                                                                node->outputs[i].device);
    }
    std::vector<Tensor> grads_in = node->apply(grads_out);
    if (!retain_graph) node->release();
    RWKV_CHECK(grads_in.empty() || grads_in.size() == node->edges.size(), "backward: ", node->name(), " returned ",
               grads_in.size(), " gradients for ", node->edges.size(), " inputs");
    for (size_t i = 0; i < grads_in.size(); ++i) {
      const Edge& edge = node->edges[i];
      if (!edge.node) continue;
      if (grads_in[i].defined()) {
        RWKV_CHECK(grads_in[i].shape() == node->inputs[i].shape, "backward: ", node->name(),
                   " produced a gradient ", grads_in[i].describe(), " for input ", i, " of shape ",
                   shape_str(node->inputs[i].shape));
        auto& slots = pending[edge.node.get()];
        slots.resize(std::max<size_t>(edge.node->outputs.size(), 1));
        add_into(slots[static_cast<size_t>(edge.input_slot)], grads_in[i], node->inputs[i].dtype);
      }
      if (--dependencies[edge.node.get()] == 0) ready.push_back(edge.node);
    }
  }
}

}  // namespace rwkv::ag
