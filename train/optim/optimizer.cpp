#include "train/optim/optimizer.h"

#include <cmath>

#include "kernels/ops.h"

namespace rwkv {

double Optimizer::lr_multiplier(const std::string& name, const TrainConfig& config) {
  if (config.layerwise_lr == 0) return 1.0;
  const bool stage2 = config.my_pile_stage == 2;
  // First match wins, by substring, as RWKV-LM's configure_optimizers.
  if (name.find("time_mix") != std::string::npos) return stage2 ? 5.0 : 1.0;
  if (name.find("time_decay") != std::string::npos) return stage2 ? 5.0 : 2.0;
  if (name.find("time_first") != std::string::npos) return stage2 ? 5.0 : 3.0;
  return 1.0;
}

Optimizer::Optimizer(const std::vector<std::pair<std::string, ag::Variable>>& named_parameters,
                     const TrainConfig& config)
    : config_(config) {
  for (const auto& [name, parameter] : named_parameters) {
    OptimizerSlot slot;
    slot.name = name;
    slot.parameter = parameter;
    slot.lr_scale = lr_multiplier(name, config);
    int64_t non_unit_dims = 0;  // "≥ 2 dimensions after squeezing": matrices, not [1, 1, C] mixes
    for (int64_t extent : parameter.shape()) non_unit_dims += extent > 1 ? 1 : 0;
    slot.decays = config.weight_decay > 0 && non_unit_dims >= 2;
    slot.weight_decay = slot.decays ? config.weight_decay : 0.0;
    if (config.optimizer == "adam") {
      slot.exp_avg = Tensor::zeros(parameter.shape(), DType::f32, parameter.data().device());
      slot.exp_avg_sq = Tensor::zeros(parameter.shape(), DType::f32, parameter.data().device());
    }
    slots_.push_back(std::move(slot));
  }
}

void Optimizer::set_weight_decay(double weight_decay) {
  for (OptimizerSlot& slot : slots_) {
    if (slot.decays) slot.weight_decay = weight_decay;
  }
}

StepReport Optimizer::step(double lr) {
  StepReport report;
  std::vector<Tensor> grads;
  for (OptimizerSlot& slot : slots_) {
    Tensor& grad = slot.parameter.mutable_grad();
    if (!grad.defined()) grad = Tensor::zeros(slot.parameter.shape(), DType::f32, slot.parameter.data().device());
    grads.push_back(grad);
  }
  report.grad_norm = std::sqrt(ops::sum_of_squares(grads));  // one pass over every gradient
  if (!std::isfinite(report.grad_norm)) return report;
  // Global-norm clipping (DeepSpeed / torch semantics): scale by clip / (norm + 1e-6) when that is below 1.
  const double clip_scale =
      config_.grad_clip > 0 ? std::min(1.0, config_.grad_clip / (report.grad_norm + 1e-6)) : 1.0;
  ++step_count_;
  if (config_.optimizer == "sgd") {
    for (OptimizerSlot& slot : slots_) {
      Tensor grad = slot.parameter.grad();
      if (clip_scale < 1.0) grad = ops::affine(grad, clip_scale, 0.0);
      Tensor& value = slot.parameter.mutable_data();
      value.copy_(ops::binary(Binary::sub, value, ops::affine(grad, lr * slot.lr_scale, 0.0)));
    }
  } else {
    // One multi-tensor step over every parameter, each with its group's learning rate; clipping is folded in.
    std::vector<ops::AdamTensor> tensors;
    for (OptimizerSlot& slot : slots_) {
      tensors.push_back({&slot.parameter.mutable_data(), &slot.parameter.grad(), &slot.exp_avg, &slot.exp_avg_sq,
                         lr * slot.lr_scale, slot.weight_decay});
    }
    ops::adam_step_(tensors, {config_.beta1, config_.beta2, config_.adam_eps, step_count_}, clip_scale);
  }
  report.applied = true;
  return report;
}

}  // namespace rwkv
