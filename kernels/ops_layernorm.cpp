#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

namespace {
Shape leading_shape(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 1); }

void check_layernorm_params(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  RWKV_CHECK(x.dim() >= 1, op, ": input must have at least one dim, got ", x.describe());
  const int64_t cols = x.size(-1);
  RWKV_CHECK(weight.shape() == Shape{cols} && bias.shape() == Shape{cols}, op, ": weight ", weight.describe(),
             " and bias ", bias.describe(), " must be [", cols, "] for input ", x.describe());
}

LayerNormOutput layernorm_cuda(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, double eps) {
  const Tensor x = x_in.contiguous(), weight = weight_in.contiguous(), bias = bias_in.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / (cols ? cols : 1);
  LayerNormOutput out{Tensor::empty(x.shape(), x.dtype(), x.device()),
                      Tensor::empty(leading_shape(x), x.dtype(), x.device()),
                      Tensor::empty(leading_shape(x), x.dtype(), x.device())};
  detail::use_device_of(x);
  cuda_kernels::layernorm_forward(x.data<float>(), weight.data<float>(), bias.data<float>(), rows, cols,
                                  static_cast<float>(eps), out.y.data<float>(), out.mean.data<float>(),
                                  out.rstd.data<float>());
  return out;
}

LayerNormGrads layernorm_backward_cuda(const Tensor& grad_y_in, const Tensor& x_in, const Tensor& weight_in,
                                       const Tensor& mean_in, const Tensor& rstd_in) {
  const Tensor grad_y = grad_y_in.contiguous(), x = x_in.contiguous(), weight = weight_in.contiguous();
  const Tensor mean = mean_in.contiguous(), rstd = rstd_in.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / (cols ? cols : 1);
  RWKV_CHECK(weight.numel() == cols && mean.numel() == rows && rstd.numel() == rows,
             "layernorm_backward: weight ", weight.describe(), ", mean ", mean.describe(), " and rstd ",
             rstd.describe(), " do not match input ", x.describe());
  LayerNormGrads grads{Tensor::empty(x.shape(), x.dtype(), x.device()), Tensor::empty({cols}, x.dtype(), x.device()),
                       Tensor::empty({cols}, x.dtype(), x.device())};
  detail::use_device_of(x);
  cuda_kernels::layernorm_backward(grad_y.data<float>(), x.data<float>(), weight.data<float>(), mean.data<float>(),
                                   rstd.data<float>(), rows, cols, grads.x.data<float>(), grads.weight.data<float>(),
                                   grads.bias.data<float>());
  return grads;
}
}  // namespace

LayerNormOutput layernorm(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, double eps) {
  profile::Scope profile_scope("layernorm", x_in.device());
  detail::check_float_operands("layernorm", {&x_in, &weight_in, &bias_in});
  check_layernorm_params("layernorm", x_in, weight_in, bias_in);
  if (x_in.device().is_cuda()) return layernorm_cuda(x_in, weight_in, bias_in, eps);
  const Tensor x = x_in.contiguous(), weight = weight_in.contiguous(), bias = bias_in.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / (cols ? cols : 1);
  LayerNormOutput out{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(leading_shape(x), x.dtype()),
                      Tensor::empty(leading_shape(x), x.dtype())};
  detail::dispatch_float("layernorm", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::layernorm_forward<T>(x.data<T>(), weight.data<T>(), bias.data<T>(), rows, cols, eps, out.y.data<T>(),
                              out.mean.data<T>(), out.rstd.data<T>());
  });
  return out;
}

LayerNormGrads layernorm_backward(const Tensor& grad_y_in, const Tensor& x_in, const Tensor& weight_in,
                                  const Tensor& mean_in, const Tensor& rstd_in) {
  profile::Scope profile_scope("layernorm", grad_y_in.device());
  detail::check_float_operands("layernorm_backward", {&grad_y_in, &x_in, &weight_in, &mean_in, &rstd_in});
  detail::check_same_shape("layernorm_backward", grad_y_in, x_in);
  if (x_in.device().is_cuda()) return layernorm_backward_cuda(grad_y_in, x_in, weight_in, mean_in, rstd_in);
  const Tensor grad_y = grad_y_in.contiguous(), x = x_in.contiguous(), weight = weight_in.contiguous();
  const Tensor mean = mean_in.contiguous(), rstd = rstd_in.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / (cols ? cols : 1);
  LayerNormGrads grads{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({cols}, x.dtype()),
                       Tensor::empty({cols}, x.dtype())};
  detail::dispatch_float("layernorm_backward", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::layernorm_backward<T>(grad_y.data<T>(), x.data<T>(), weight.data<T>(), mean.data<T>(), rstd.data<T>(),
                               rows, cols, grads.x.data<T>(), grads.weight.data<T>(), grads.bias.data<T>());
  });
  return grads;
}

}  // namespace rwkv::ops
