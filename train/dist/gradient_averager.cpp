#include "train/dist/gradient_averager.h"

#include <algorithm>

namespace rwkv::dist {

void GradientAverager::average(std::vector<OptimizerSlot>& slots) {
  if (communicator_.world_size() == 1) return;
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

}  // namespace rwkv::dist
