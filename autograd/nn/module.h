// Module: a named collection of parameters and child modules. named_parameters() lists them in PyTorch
// state_dict order (own parameters in registration order, then each child's, prefixed "child.").
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace rwkv::ag::nn {

class Module {
public:
  virtual ~Module() = default;
  std::vector<std::pair<std::string, Variable>> named_parameters() const;
  std::vector<Variable> parameters() const;
  void zero_grad();
  // Moves every parameter's value to `device` (gradients are dropped).
  void to(Device device);

protected:
  Variable register_parameter(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }

private:
  std::vector<std::pair<std::string, Variable>> parameters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Children named "0", "1", ... in order (PyTorch's ModuleList), e.g. the "blocks" of a model.
class ModuleList : public Module {
public:
  template <typename M>
  std::shared_ptr<M> append(std::shared_ptr<M> module) {
    return register_module(std::to_string(size_++), std::move(module));
  }
  size_t size() const { return size_; }

private:
  size_t size_ = 0;
};

// y = x W^T with W of shape [out, in] (PyTorch Linear convention, no bias, as in RWKV-4).
class Linear : public Module {
public:
  Linear(int64_t in_features, int64_t out_features);
  Variable forward(const Variable& x) const;  // x: [..., in] -> [..., out]
  const Variable& weight() const { return weight_; }

private:
  Variable weight_;
};

// LayerNorm over the last dim with a learnable weight (init 1) and bias (init 0); eps 1e-5, biased variance.
class LayerNorm : public Module {
public:
  explicit LayerNorm(int64_t features);
  Variable forward(const Variable& x) const;
  // The residual add fused in: sum = x + delta, y = layernorm(sum).
  struct Output {
    Variable sum, y;
  };
  Output forward_with_residual(const Variable& x, const Variable& delta) const;
  const Variable& weight() const { return weight_; }
  const Variable& bias() const { return bias_; }

private:
  Variable weight_, bias_;
};

// Token embedding: [vocab, dim] table looked up by integer ids (init zeros; the model sets its own init).
class Embedding : public Module {
public:
  Embedding(int64_t vocab, int64_t dim);
  Variable forward(const Tensor& ids) const;

private:
  Variable weight_;
};

}  // namespace rwkv::ag::nn
