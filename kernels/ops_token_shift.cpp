#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

namespace {
// The CUDA path writes `previous` into t = 0 itself (a strided copy into a CUDA slice is not supported).
Tensor shift_cuda(const char* op, const Tensor& x_in, const Tensor& previous_in, bool backward) {
  detail::check_float_operands(op, {&x_in});
  RWKV_CHECK(x_in.dim() == 3, op, ": expects [batch, time, channels], got ", x_in.describe());
  const Tensor x = x_in.contiguous();
  Tensor previous;
  if (previous_in.defined()) {
    detail::check_float_operands(op, {&x, &previous_in});
    RWKV_CHECK(previous_in.shape() == (Shape{x.size(0), x.size(2)}), op, ": previous ", previous_in.describe(),
               " must be [", x.size(0), ", ", x.size(2), "] for input ", x.describe());
    previous = previous_in.contiguous();
  }
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  detail::use_device_of(x);
  if (backward) {
    cuda_kernels::token_shift_backward(x.data<float>(), x.size(0), x.size(1), x.size(2), out.data<float>());
  } else {
    cuda_kernels::token_shift(x.data<float>(), previous.defined() ? previous.data<float>() : nullptr, x.size(0),
                              x.size(1), x.size(2), out.data<float>());
  }
  return out;
}

template <bool kBackward>
Tensor shift(const char* op, const Tensor& x_in) {
  profile::Scope profile_scope("token shift", x_in.device());
  detail::check_float_operands(op, {&x_in});
  RWKV_CHECK(x_in.dim() == 3, op, ": expects [batch, time, channels], got ", x_in.describe());
  if (x_in.device().is_cuda()) return shift_cuda(op, x_in, Tensor(), kBackward);
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::dispatch_float(op, x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if constexpr (kBackward) {
      cpu::token_shift_backward<T>(x.data<T>(), x.size(0), x.size(1), x.size(2), out.data<T>());
    } else {
      cpu::token_shift<T>(x.data<T>(), x.size(0), x.size(1), x.size(2), out.data<T>());
    }
  });
  return out;
}
}  // namespace

Tensor token_shift(const Tensor& x, const Tensor& previous) {
  profile::Scope profile_scope("token shift", x.device());
  if (x.device().is_cuda()) return shift_cuda("token_shift", x, previous, false);
  Tensor out = shift<false>("token_shift", x);
  if (previous.defined()) {
    detail::check_float_operands("token_shift", {&x, &previous});
    RWKV_CHECK(previous.shape() == (Shape{x.size(0), x.size(2)}), "token_shift: previous ", previous.describe(),
               " must be [", x.size(0), ", ", x.size(2), "] for input ", x.describe());
    out.slice(1, 0, 1).copy_(previous.unsqueeze(1));
  }
  return out;
}

Tensor token_shift_backward(const Tensor& grad_out) { return shift<true>("token_shift_backward", grad_out); }

Tensor token_shift_previous_backward(const Tensor& grad_out) {
  profile::Scope profile_scope("token shift", grad_out.device());
  RWKV_CHECK(grad_out.dim() == 3, "token_shift_previous_backward: expects [batch, time, channels], got ",
             grad_out.describe());
  return grad_out.slice(1, 0, 1).squeeze(1).contiguous();
}

}  // namespace rwkv::ops
