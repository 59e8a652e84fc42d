// The learning-rate schedule of spec §4.4: exponential (or linear) decay lr_init -> lr_final over epoch_count
// mini-epochs by the absolute step, the cosine variant driven by my_exit_tokens, and warmup 0.2 + 0.8·s/w.
#pragma once

#include <cstdint>

#include "train/config.h"

namespace rwkv {

struct ScheduleShape {
  int64_t epoch_steps = 0;  // optimizer steps per mini-epoch (after magic_prime forcing)
  int64_t epoch_count = 0;
  int64_t real_bsz = 0;     // sequences per optimizer step over all ranks and micro-batches
};

// The effective schedule of a config: with magic_prime, epoch_steps = 40320 / real_bsz (must divide) and
// epoch_count = magic_prime / 40320, as RWKV-LM forces them.
ScheduleShape schedule_shape(const TrainConfig& config, int64_t world_size);

// lr at an optimizer step. `global_step` counts steps since training began (restored on resume, so a resumed
// run does not warm up again; a fine-tune from weights starts at 0 and does); the decay uses the absolute
// step global_step + epoch_begin·epoch_steps.
double learning_rate(const TrainConfig& config, const ScheduleShape& shape, int64_t global_step);

// The global step at which the schedule is done (epoch_count mini-epochs, or my_exit_tokens tokens), counted
// like global_step.
int64_t schedule_end_step(const TrainConfig& config, const ScheduleShape& shape);

}  // namespace rwkv
