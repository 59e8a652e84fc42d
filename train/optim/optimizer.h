// Adam / AdamW / SGD over RWKV-LM's parameter groups (spec §4.1-4.3) with fp32 moments, global-norm gradient
// clipping, and a skip of non-finite updates.
#pragma once

#include <string>
#include <vector>

#include "autograd/variable.h"
#include "train/config/config.h"

namespace rwkv {

struct OptimizerSlot {
  std::string name;
  ag::Variable parameter;
  double lr_scale = 1.0;      // layerwise_lr multiplier (spec §4.2)
  double weight_decay = 0.0;  // decoupled (AdamW) decay: matrices only, when weight_decay > 0
  bool decays = false;        // in RWKV-LM's weight-decay group (matrices, when weight_decay > 0)
  Tensor exp_avg, exp_avg_sq;  // Adam moments, fp32, same shape and device as the parameter
};

struct StepReport {
  double grad_norm = 0;  // global L2 norm before clipping
  bool applied = false;  // false when the gradients were not finite (the update was skipped)
};

class Optimizer {
public:
  Optimizer(const std::vector<std::pair<std::string, ag::Variable>>& named_parameters, const TrainConfig& config);

  // Clips to grad_clip, then updates every parameter with lr · its group's multiplier. Parameters without a
  // gradient are treated as having a zero gradient. Non-finite gradients skip the update (moments untouched).
  StepReport step(double lr);

  std::vector<OptimizerSlot>& slots() { return slots_; }
  const std::vector<OptimizerSlot>& slots() const { return slots_; }
  int64_t step_count() const { return step_count_; }  // Adam updates applied so far (bias correction)
  void set_step_count(int64_t count) { step_count_ = count; }
  // The multiplier spec §4.2 gives a parameter name.
  static double lr_multiplier(const std::string& name, const TrainConfig& config);
  // The decay of the weight-decay group from now on (weight_decay_final's schedule); other slots keep 0.
  void set_weight_decay(double weight_decay);

private:
  TrainConfig config_;
  std::vector<OptimizerSlot> slots_;
  int64_t step_count_ = 0;
};

}  // namespace rwkv
