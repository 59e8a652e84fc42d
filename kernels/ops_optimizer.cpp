#include <cmath>

#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

void adam_step_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamHyper& hyper) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&param, &grad, &exp_avg, &exp_avg_sq}) {
    RWKV_CHECK(t->dtype() == DType::f32 && t->is_contiguous() && t->device() == param.device(),
               "adam_step: parameters, gradients and moments must be contiguous f32 on one device, got ",
               t->describe());
    detail::check_same_shape("adam_step", param, *t);
  }
  RWKV_CHECK(hyper.step >= 1, "adam_step: step must count from 1, got ", hyper.step);
  const double bias1 = 1.0 - std::pow(hyper.beta1, static_cast<double>(hyper.step));
  const double bias2 = 1.0 - std::pow(hyper.beta2, static_cast<double>(hyper.step));
  if (param.device().is_cuda()) {
    detail::use_device_of(param);
    cuda_kernels::adam_step(param.data<float>(), grad.data<float>(), exp_avg.data<float>(),
                            exp_avg_sq.data<float>(), param.numel(), static_cast<float>(hyper.lr),
                            static_cast<float>(hyper.beta1), static_cast<float>(hyper.beta2),
                            static_cast<float>(hyper.eps), static_cast<float>(hyper.weight_decay),
                            static_cast<float>(bias1), static_cast<float>(bias2));
    return;
  }
  cpu::adam_step(param.data<float>(), grad.data<float>(), exp_avg.data<float>(), exp_avg_sq.data<float>(),
                 param.numel(), static_cast<float>(hyper.lr), static_cast<float>(hyper.beta1),
                 static_cast<float>(hyper.beta2), static_cast<float>(hyper.eps),
                 static_cast<float>(hyper.weight_decay), static_cast<float>(bias1), static_cast<float>(bias2));
}

double sum_of_squares(const Tensor& x_in) {
  RWKV_CHECK(x_in.dtype() == DType::f32, "sum_of_squares: expects f32, got ", x_in.describe());
  const Tensor x = x_in.contiguous();
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    return cuda_kernels::sum_of_squares(x.data<float>(), x.numel());
  }
  return cpu::sum_of_squares(x.data<float>(), x.numel());
}

}  // namespace rwkv::ops
