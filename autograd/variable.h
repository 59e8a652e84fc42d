// Variable: a tensor value plus what reverse-mode autograd needs (requires_grad, the accumulated .grad, and
// the graph node that produced it). Variables are cheap handles; copies share the same value and gradient.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rwkv::ag {

class Node;

struct VariableImpl {
  Tensor data;
  Tensor grad;                        // accumulated gradient of a leaf (undefined until backward reaches it)
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;      // the node that produced this value (null for leaves)
  int output_index = 0;               // which output of grad_fn this is
  std::shared_ptr<Node> accumulator;  // a leaf's gradient sink, created on first use
  std::function<void()> on_grad_accumulated;  // see Variable::set_grad_accumulated_hook
};

class Variable {
public:
  Variable() = default;
  explicit Variable(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& data() const;
  Tensor& mutable_data();  // for optimizers: update parameters in place (outside any graph)
  const Tensor& grad() const;
  Tensor& mutable_grad();
  bool requires_grad() const;
  bool is_leaf() const;
  const Shape& shape() const { return data().shape(); }
  int64_t size(int64_t dim) const { return data().size(dim); }
  int64_t dim() const { return data().dim(); }
  DType dtype() const { return data().dtype(); }
  std::string describe() const { return data().describe(); }

  // Reverse-mode differentiation from this variable: a one-element output may omit grad_output (taken as 1).
  // The graph's saved tensors are freed as backward walks it unless retain_graph is true.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;
  void zero_grad();
  // A leaf's hook, called by backward right after it has added a contribution to .grad (once per backward for
  // a leaf used once: the engine sums every path first). Data-parallel training starts reducing a gradient
  // bucket from it while backward goes on. An empty function removes the hook.
  void set_grad_accumulated_hook(std::function<void()> hook);
  Variable detach() const;  // same value, no history, no gradient

  // ---- for autograd internals
  static Variable from_node(Tensor data, std::shared_ptr<Node> grad_fn, int output_index);
  std::shared_ptr<Node> gradient_node() const;  // grad_fn, or the leaf's accumulator; null when no grad
  int output_index() const;
  bool same_as(const Variable& other) const { return impl_ == other.impl_; }

private:
  std::shared_ptr<VariableImpl> impl_;
};

// Gradient recording is on by default; NoGradGuard turns it off for its scope (per thread).
bool grad_enabled();
class NoGradGuard {
public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
  bool previous_;
};

// Also restores a previous state: used by checkpoint to re-enable recording during recomputation.
class GradModeGuard {
public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

private:
  bool previous_;
};

}  // namespace rwkv::ag
