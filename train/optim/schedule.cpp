#include "train/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "data/magic_prime.h"

namespace rwkv {

namespace {
constexpr int64_t kSamplesPerMiniEpoch = 40320;  // spec §4.5: 8!

// The absolute step that ends the run, before subtracting this run's epoch_begin.
int64_t end_real_step(const TrainConfig& c, const ScheduleShape& shape) {
  int64_t end = shape.epoch_count * shape.epoch_steps;
  if (c.my_exit_tokens != 0) {
    // RWKV-LM checks at the start of each step whether real_step·ctx_len·real_bsz has reached |my_exit_tokens|,
    // and if so saves rwkv-final and exits before training that step.
    const int64_t per_step = c.ctx_len * shape.real_bsz;
    end = (std::abs(c.my_exit_tokens) + per_step - 1) / per_step;
  } else if (c.magic_prime != 0) {
    end = static_cast<int64_t>(data::magic_final_step(c.magic_prime, static_cast<uint64_t>(shape.real_bsz),
                                                      static_cast<uint64_t>(c.my_random_steps)));
  }
  // my_exit: RWKV-LM exits at the end of the first mini-epoch whose absolute index is >= my_exit.
  if (c.my_exit < TrainConfig{}.my_exit) {
    end = std::min(end, (std::max(c.my_exit, c.epoch_begin) + 1) * shape.epoch_steps);
  }
  return end;
}
}  // namespace

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
    // 0 for data smaller than one mini-epoch: RWKV-LM then keeps lr_init (or follows my_exit_tokens' cosine).
    shape.epoch_count = static_cast<int64_t>(config.magic_prime) / kSamplesPerMiniEpoch;
    RWKV_CHECK(config.my_exit_tokens != 0 ||
                   data::magic_final_step(config.magic_prime, static_cast<uint64_t>(shape.real_bsz)) > 0,
               "config: magic_prime ", config.magic_prime, " holds fewer than two global batches of ", shape.real_bsz,
               " sequences, so RWKV-LM's end of run (step magic_prime // batch - 1) never comes; use a smaller ",
               "micro_bsz or ctx_len, or set my_exit_tokens");
  }
  return shape;
}

std::optional<double> schedule_progress(const TrainConfig& c, const ScheduleShape& shape, int64_t global_step) {
  const double real_step = static_cast<double>(global_step + c.epoch_begin * shape.epoch_steps);
  const double w = static_cast<double>(c.warmup_steps);
  std::optional<double> progress;
  if (c.lr_final != c.lr_init && shape.epoch_count != 0) {
    const double decay_step = real_step - static_cast<double>(c.my_pile_edecay * shape.epoch_steps);
    const double decay_total = static_cast<double>((shape.epoch_count - c.my_pile_edecay) * shape.epoch_steps);
    progress = std::clamp((decay_step - w + 1) / (decay_total - w), 0.0, 1.0);
  }
  if (c.my_exit_tokens != 0) {
    const double per_step = static_cast<double>(c.ctx_len * shape.real_bsz);
    const double tokens = real_step * per_step, warmup_tokens = w * per_step;
    progress = std::clamp(
        (tokens - warmup_tokens) / (std::abs(static_cast<double>(c.my_exit_tokens)) - warmup_tokens), 0.0, 1.0);
  }
  return progress;
}

double learning_rate(const TrainConfig& c, const ScheduleShape& shape, int64_t global_step) {
  const double w = static_cast<double>(c.warmup_steps);
  double lr = c.lr_init;
  if (c.lr_final != c.lr_init && shape.epoch_count != 0) {
    TrainConfig decay_only = c;  // the exponential decay's progress, even when my_exit_tokens mixes it in below
    decay_only.my_exit_tokens = 0;
    const double progress = *schedule_progress(decay_only, shape, global_step);
    if (c.lr_init == 0 || c.lr_final == 0) {
      lr = c.lr_init + (c.lr_final - c.lr_init) * progress;
    } else {
      lr = c.lr_init * std::exp(std::log(c.lr_final / c.lr_init) * progress);
    }
  }
  if (c.my_exit_tokens != 0) {
    const double pc = *schedule_progress(c, shape, global_step);
    const double f = c.lr_final / c.lr_init;
    const double mult = (0.5 + f / 2) + (0.5 - f / 2) * std::cos(std::numbers::pi * pc);
    lr = c.my_exit_tokens > 0 ? c.lr_init * mult : (lr + c.lr_init * mult) / 2;
  }
  if (static_cast<double>(global_step) < w) lr *= 0.2 + 0.8 * static_cast<double>(global_step) / w;
  return lr;
}

double weight_decay_at(const TrainConfig& c, const ScheduleShape& shape, int64_t global_step) {
  if (c.weight_decay_final <= 0 || c.weight_decay <= 0) return c.weight_decay;
  const std::optional<double> progress = schedule_progress(c, shape, global_step);
  if (!progress) return c.weight_decay;
  return c.weight_decay * std::exp(std::log(c.weight_decay_final / c.weight_decay) * *progress);
}

int64_t schedule_end_step(const TrainConfig& c, const ScheduleShape& shape) {
  return std::max<int64_t>(0, end_real_step(c, shape) - c.epoch_begin * shape.epoch_steps);
}

std::string schedule_end_reason(const TrainConfig& c, const ScheduleShape& shape) {
  const int64_t end = end_real_step(c, shape);
  std::string reason;
  if (c.my_exit < TrainConfig{}.my_exit && end == (std::max(c.my_exit, c.epoch_begin) + 1) * shape.epoch_steps) {
    reason = detail::concat("my_exit: after mini-epoch ", std::max(c.my_exit, c.epoch_begin));
  } else if (c.my_exit_tokens != 0) {
    reason = detail::concat("my_exit_tokens ", std::abs(c.my_exit_tokens), " = ", end, " steps of ",
                            c.ctx_len * shape.real_bsz, " tokens (rounded up)");
  } else if (c.magic_prime != 0) {
    reason = detail::concat("one pass over the ", c.magic_prime, " chunks of magic_prime: ", c.magic_prime, " // ",
                            shape.real_bsz, " - 1", c.my_random_steps ? " + my_random_steps" : "", " = ", end,
                            " steps, where RWKV-LM saves rwkv-final");
  } else {
    reason = detail::concat(shape.epoch_count, " mini-epochs of ", shape.epoch_steps, " steps");
  }
  if (c.epoch_begin > 0) reason += detail::concat(", from mini-epoch ", c.epoch_begin);
  return reason;
}

}  // namespace rwkv
