#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace rwkv {

namespace {
constexpr int64_t kSamplesPerMiniEpoch = 40320;  // spec §4.5: 8!
}

ScheduleShape schedule_shape(const TrainConfig& config, int64_t world_size) {
  ScheduleShape shape;
  shape.real_bsz = config.micro_bsz * config.accumulate_grad_batches * world_size;
  shape.epoch_steps = config.epoch_steps;
  shape.epoch_count = config.epoch_count;
  if (config.magic_prime != 0) {
    RWKV_CHECK(kSamplesPerMiniEpoch % shape.real_bsz == 0, "config: with magic_prime, the global batch ",
               "micro_bsz * accumulate_grad_batches * world size = ", shape.real_bsz,
               " must divide 40320 (the samples of one mini-epoch)");
    shape.epoch_steps = kSamplesPerMiniEpoch / shape.real_bsz;
    shape.epoch_count = static_cast<int64_t>(config.magic_prime) / kSamplesPerMiniEpoch;
    RWKV_CHECK(shape.epoch_count > 0, "config: magic_prime ", config.magic_prime,
               " is smaller than one mini-epoch of 40320 samples; use random sampling (magic_prime = 0) for ",
               "data this small");
  }
  return shape;
}

double learning_rate(const TrainConfig& c, const ScheduleShape& shape, int64_t global_step) {
  const double real_step = static_cast<double>(global_step + c.epoch_begin * shape.epoch_steps);
  const double w = static_cast<double>(c.warmup_steps);
  double lr = c.lr_init;
  if (c.lr_final != c.lr_init && shape.epoch_count != 0) {
    const double decay_step = real_step - static_cast<double>(c.my_pile_edecay * shape.epoch_steps);
    const double decay_total = static_cast<double>((shape.epoch_count - c.my_pile_edecay) * shape.epoch_steps);
    const double progress = std::clamp((decay_step - w + 1) / (decay_total - w), 0.0, 1.0);
    if (c.lr_init == 0 || c.lr_final == 0) {
      lr = c.lr_init + (c.lr_final - c.lr_init) * progress;
    } else {
      lr = c.lr_init * std::exp(std::log(c.lr_final / c.lr_init) * progress);
    }
  }
  if (c.my_exit_tokens != 0) {
    const double per_step = static_cast<double>(c.ctx_len * shape.real_bsz);
    const double tokens = real_step * per_step, warmup_tokens = w * per_step;
    const double pc = std::clamp((tokens - warmup_tokens) /
                                     (std::abs(static_cast<double>(c.my_exit_tokens)) - warmup_tokens),
                                 0.0, 1.0);
    const double f = c.lr_final / c.lr_init;
    const double mult = (0.5 + f / 2) + (0.5 - f / 2) * std::cos(std::numbers::pi * pc);
    lr = c.my_exit_tokens > 0 ? c.lr_init * mult : (lr + c.lr_init * mult) / 2;
  }
  if (static_cast<double>(global_step) < w) lr *= 0.2 + 0.8 * static_cast<double>(global_step) / w;
  return lr;
}

int64_t schedule_end_step(const TrainConfig& c, const ScheduleShape& shape) {
  int64_t end_real_step = shape.epoch_count * shape.epoch_steps;
  if (c.my_exit_tokens != 0) {
    const int64_t per_step = c.ctx_len * shape.real_bsz;
    end_real_step = (std::abs(c.my_exit_tokens) + per_step - 1) / per_step;
  }
  return std::max<int64_t>(0, end_real_step - c.epoch_begin * shape.epoch_steps);
}

}  // namespace rwkv
