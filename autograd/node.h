// Graph nodes. A node is created by a differentiable op when any input requires a gradient; it holds one edge
// per input (to the node that produced that input, or the input leaf's accumulator) and a backward function
// that captures exactly the tensors the gradient formula needs (nothing else is kept alive).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "core/tensor.h"

namespace rwkv::ag {

struct Edge {
  std::shared_ptr<Node> node;  // null when that input needs no gradient
  int input_slot = 0;          // which output of `node` the input was
};

// Describes a tensor without holding its data (to materialise zero gradients and check gradient shapes).
struct TensorMeta {
  Shape shape;
  DType dtype = DType::f32;
  Device device;
  static TensorMeta of(const Tensor& t) { return {t.shape(), t.dtype(), t.device()}; }
};

class Node {
public:
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grads_out has one entry per output, zeros where no gradient flowed; returns one gradient per edge
  // (undefined where there is none).
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grads_out) = 0;
  // Frees what backward saved; a later apply() is an error.
  virtual void release() {}

  std::vector<Edge> edges;
  std::vector<TensorMeta> inputs;   // one per edge
  std::vector<TensorMeta> outputs;  // one per output
};

// The node behind ordinary ops: a backward lambda over grads_out.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads_out)>;

class FunctionNode final : public Node {
public:
  FunctionNode(std::string name, BackwardFn backward) : name_(std::move(name)), backward_(std::move(backward)) {}
  std::string name() const override { return name_; }
  std::vector<Tensor> apply(const std::vector<Tensor>& grads_out) override;
  void release() override { backward_ = nullptr; }

private:
  std::string name_;
  BackwardFn backward_;
};

// Sink for a leaf's gradient: adds what arrives into the leaf's .grad.
class AccumulateGrad final : public Node {
public:
  explicit AccumulateGrad(std::weak_ptr<VariableImpl> leaf) : leaf_(std::move(leaf)) {}
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const std::vector<Tensor>& grads_out) override;

private:
  std::weak_ptr<VariableImpl> leaf_;
};

// Wraps op results: when recording and any input requires a gradient, the outputs get a node with `backward`;
// otherwise they are plain values. `name` appears in error messages.
std::vector<Variable> make_outputs(const std::string& name, std::vector<Tensor> values,
                                   const std::vector<Variable>& inputs, BackwardFn backward);
Variable make_output(const std::string& name, Tensor value, const std::vector<Variable>& inputs,
                     BackwardFn backward);
bool any_requires_grad(const std::vector<Variable>& inputs);

// Runs reverse mode from several roots at once (grads may be undefined only for one-element roots, meaning 1).
void run_backward(const std::vector<Variable>& roots, const std::vector<Tensor>& grads, bool retain_graph);

}  // namespace rwkv::ag
