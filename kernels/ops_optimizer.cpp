#include <cmath>
#include <vector>

#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

void adam_step_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamHyper& hyper) {
  profile::Scope profile_scope("optimizer", param.device());
  detail::check_same_device("adam_step", {&param, &grad, &exp_avg, &exp_avg_sq});
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
  profile::Scope profile_scope("optimizer", x_in.device());
  RWKV_CHECK(x_in.dtype() == DType::f32, "sum_of_squares: expects f32, got ", x_in.describe());
  const Tensor x = x_in.contiguous();
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    return cuda_kernels::sum_of_squares(x.data<float>(), x.numel());
  }
  return cpu::sum_of_squares(x.data<float>(), x.numel());
}

void adam_step_(const std::vector<AdamTensor>& tensors, const AdamShared& hyper, double grad_scale) {
  profile::Scope profile_scope("optimizer", tensors.empty() ? Device::cpu() : tensors.front().param->device());
  if (tensors.empty()) return;
  std::vector<const Tensor*> operands;
  for (const AdamTensor& e : tensors) operands.insert(operands.end(), {e.param, e.grad, e.exp_avg, e.exp_avg_sq});
  detail::check_same_device("adam_step", operands);
  const Device device = tensors.front().param->device();
  for (const AdamTensor& entry : tensors) {
    for (const Tensor* t : std::initializer_list<const Tensor*>{entry.param, entry.grad, entry.exp_avg,
                                                                entry.exp_avg_sq}) {
      RWKV_CHECK(t->dtype() == DType::f32 && t->is_contiguous() && t->device() == device,
                 "adam_step: parameters, gradients and moments must be contiguous f32 on one device, got ",
                 t->describe());
      detail::check_same_shape("adam_step", *entry.param, *t);
    }
  }
  RWKV_CHECK(hyper.step >= 1, "adam_step: step must count from 1, got ", hyper.step);
  RWKV_CHECK(grad_scale > 0 && grad_scale <= 1, "adam_step: gradient scale must be in (0, 1], got ", grad_scale);
  const float bias1 = static_cast<float>(1.0 - std::pow(hyper.beta1, static_cast<double>(hyper.step)));
  const float bias2 = static_cast<float>(1.0 - std::pow(hyper.beta2, static_cast<double>(hyper.step)));
  const bool scale_grad = grad_scale < 1.0;  // as the clipping did: scale only when the norm is above the clip
  if (device.is_cuda()) {
    detail::use_device_of(*tensors.front().param);
    std::vector<cuda_kernels::AdamTensorArgs> args;
    for (const AdamTensor& e : tensors) {
      args.push_back({e.param->data<float>(), e.grad->data<float>(), e.exp_avg->data<float>(),
                      e.exp_avg_sq->data<float>(), e.param->numel(), static_cast<float>(e.lr),
                      static_cast<float>(e.weight_decay)});
    }
    cuda_kernels::multi_tensor_adam_step(args.data(), static_cast<int64_t>(args.size()),
                                         static_cast<float>(hyper.beta1), static_cast<float>(hyper.beta2),
                                         static_cast<float>(hyper.eps), bias1, bias2, scale_grad,
                                         static_cast<float>(grad_scale));
    return;
  }
  for (const AdamTensor& e : tensors) {
    cpu::adam_step(e.param->data<float>(), e.grad->data<float>(), e.exp_avg->data<float>(),
                   e.exp_avg_sq->data<float>(), e.param->numel(), static_cast<float>(e.lr),
                   static_cast<float>(hyper.beta1), static_cast<float>(hyper.beta2), static_cast<float>(hyper.eps),
                   static_cast<float>(e.weight_decay), bias1, bias2, scale_grad, static_cast<float>(grad_scale));
  }
}

double sum_of_squares(const std::vector<Tensor>& tensors_in) {
  profile::Scope profile_scope("optimizer", tensors_in.empty() ? Device::cpu() : tensors_in.front().device());
  if (tensors_in.empty()) return 0.0;
  std::vector<const Tensor*> operands;
  for (const Tensor& t : tensors_in) operands.push_back(&t);
  detail::check_same_device("sum_of_squares", operands);
  std::vector<Tensor> tensors;
  for (const Tensor& t : tensors_in) {
    RWKV_CHECK(t.dtype() == DType::f32 && t.device() == tensors_in.front().device(),
               "sum_of_squares: expects f32 tensors on one device, got ", t.describe());
    tensors.push_back(t.contiguous());
  }
  if (tensors.front().device().is_cuda()) {
    detail::use_device_of(tensors.front());
    std::vector<const float*> pointers;
    std::vector<int64_t> sizes;
    for (const Tensor& t : tensors) {
      pointers.push_back(t.data<float>());
      sizes.push_back(t.numel());
    }
    return cuda_kernels::multi_tensor_sum_of_squares(pointers.data(), sizes.data(),
                                                     static_cast<int64_t>(tensors.size()));
  }
  double total = 0;
  for (const Tensor& t : tensors) total += cpu::sum_of_squares(t.data<float>(), t.numel());
  return total;
}

}  // namespace rwkv::ops
