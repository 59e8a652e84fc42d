#include "autograd/variable.h"

#include "autograd/node.h"

namespace rwkv::ag {

namespace {
thread_local bool g_grad_enabled = true;

const std::shared_ptr<VariableImpl>& checked(const std::shared_ptr<VariableImpl>& impl) {
  RWKV_CHECK(impl != nullptr, "Variable: use of an undefined variable");
  return impl;
}
}  // namespace

Variable::Variable(Tensor data, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  RWKV_CHECK(!requires_grad || is_floating(data.dtype()), "Variable: only floating-point tensors can require a ",
             "gradient, got ", data.describe());
  impl_->data = std::move(data);
  impl_->requires_grad = requires_grad;
}

const Tensor& Variable::data() const { return checked(impl_)->data; }
Tensor& Variable::mutable_data() { return checked(impl_)->data; }
const Tensor& Variable::grad() const { return checked(impl_)->grad; }
Tensor& Variable::mutable_grad() { return checked(impl_)->grad; }
bool Variable::requires_grad() const { return checked(impl_)->requires_grad; }
bool Variable::is_leaf() const { return checked(impl_)->grad_fn == nullptr; }
int Variable::output_index() const { return checked(impl_)->output_index; }

void Variable::zero_grad() { checked(impl_)->grad = Tensor(); }

void Variable::set_grad_accumulated_hook(std::function<void()> hook) {
  RWKV_CHECK(is_leaf(), "set_grad_accumulated_hook: ", describe(), " is not a leaf");
  checked(impl_)->on_grad_accumulated = std::move(hook);
}

Variable Variable::detach() const { return Variable(data(), false); }

Variable Variable::from_node(Tensor data, std::shared_ptr<Node> grad_fn, int output_index) {
  Variable v(std::move(data), true);
  v.impl_->grad_fn = std::move(grad_fn);
  v.impl_->output_index = output_index;
  return v;
}

std::shared_ptr<Node> Variable::gradient_node() const {
  const auto& impl = checked(impl_);
  if (!impl->requires_grad) return nullptr;
  if (impl->grad_fn) return impl->grad_fn;
  if (!impl->accumulator) impl->accumulator = std::make_shared<AccumulateGrad>(impl);
  return impl->accumulator;
}

void Variable::backward(const Tensor& grad_output, bool retain_graph) const {
  run_backward({*this}, {grad_output}, retain_graph);
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

GradModeGuard::GradModeGuard(bool enabled) : previous_(g_grad_enabled) { g_grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { g_grad_enabled = previous_; }

}  // namespace rwkv::ag
