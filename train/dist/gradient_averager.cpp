#include "train/dist/gradient_averager.h"

#include <algorithm>
#include <span>

#include "kernels/ops.h"

namespace rwkv::dist {

void GradientAverager::average(std::vector<OptimizerSlot>& slots) {
  if (communicator_.world_size() == 1) return;
  if (communicator_.accepts_device_memory() && !slots.empty() && slots.front().parameter.data().device().is_cuda()) {
    average_on_device(slots);
    return;
  }
  size_t total = 0;
  for (const OptimizerSlot& slot : slots) total += static_cast<size_t>(slot.parameter.data().numel());
  flat_.resize(total);
  size_t at = 0;
  for (OptimizerSlot& slot : slots) {
    const Tensor& grad = slot.parameter.grad();
    const size_t count = static_cast<size_t>(slot.parameter.data().numel());
    if (grad.defined()) {
      const std::vector<float> values = grad.to_vector<float>();
      std::copy(values.begin(), values.end(), flat_.begin() + static_cast<std::ptrdiff_t>(at));
    } else {
      std::fill_n(flat_.begin() + static_cast<std::ptrdiff_t>(at), count, 0.0f);
    }
    at += count;
  }
  communicator_.all_reduce_sum(flat_);
  const float scale = 1.0f / static_cast<float>(communicator_.world_size());
  for (float& value : flat_) value *= scale;
  at = 0;
  for (OptimizerSlot& slot : slots) {
    const Tensor& parameter = slot.parameter.data();
    const size_t count = static_cast<size_t>(parameter.numel());
    const std::vector<float> mean(flat_.begin() + static_cast<std::ptrdiff_t>(at),
                                  flat_.begin() + static_cast<std::ptrdiff_t>(at + count));
    Tensor& grad = slot.parameter.mutable_grad();
    if (!grad.defined()) grad = Tensor::zeros(parameter.shape(), DType::f32, parameter.device());
    grad.copy_(Tensor::from_vector(mean, parameter.shape()));  // copy_ moves it to the gradient's device
    at += count;
  }
}

void GradientAverager::average_on_device(std::vector<OptimizerSlot>& slots) {
  const Device device = slots.front().parameter.data().device();
  int64_t total = 0;
  for (const OptimizerSlot& slot : slots) total += slot.parameter.data().numel();
  if (!device_flat_.defined() || device_flat_.numel() != total || device_flat_.device() != device) {
    device_flat_ = Tensor::zeros({total}, DType::f32, device);
  }
  int64_t at = 0;
  for (OptimizerSlot& slot : slots) {
    const Tensor& parameter = slot.parameter.data();
    Tensor part = device_flat_.slice(0, at, at + parameter.numel()).view(parameter.shape());
    const Tensor& grad = slot.parameter.grad();
    if (grad.defined()) {
      part.copy_(grad);
    } else {
      part.zero_();
    }
    at += parameter.numel();
  }
  communicator_.all_reduce_sum(std::span<float>(device_flat_.data<float>(), static_cast<size_t>(total)));
  const Tensor mean = ops::affine(device_flat_, 1.0 / static_cast<double>(communicator_.world_size()), 0.0);
  at = 0;
  for (OptimizerSlot& slot : slots) {
    const Tensor& parameter = slot.parameter.data();
    Tensor& grad = slot.parameter.mutable_grad();
    if (!grad.defined()) grad = Tensor::zeros(parameter.shape(), DType::f32, device);
    grad.copy_(mean.slice(0, at, at + parameter.numel()).view(parameter.shape()));
    at += parameter.numel();
  }
}

}  // namespace rwkv::dist
