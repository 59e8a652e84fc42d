// The learning-rate schedule of spec §4.4: exponential (or linear) decay lr_init -> lr_final over epoch_count
// mini-epochs by the absolute step, the cosine variant driven by my_exit_tokens, and warmup 0.2 + 0.8·s/w; the
// weight-decay schedule that shares its progress; and where a run ends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "train/config/config.h"

namespace rwkv {

struct ScheduleShape {
  int64_t epoch_steps = 0;  // optimizer steps per mini-epoch (after magic_prime forcing)
  int64_t epoch_count = 0;  // 0 with a magic prime below 40320: the lr stays at lr_init (unless my_exit_tokens)
  int64_t real_bsz = 0;     // sequences per optimizer step over all ranks and micro-batches
};

// The effective schedule of a config: with magic_prime, epoch_steps = 40320 / real_bsz (must divide) and
// epoch_count = magic_prime / 40320 (0 for small data), as RWKV-LM forces them.
ScheduleShape schedule_shape(const TrainConfig& config, int64_t world_size);

// The decay progress in [0, 1] that RWKV-LM's on_train_batch_start computes at `global_step`: the exponential
// decay's, replaced by the cosine schedule's when my_exit_tokens is set; nullopt when neither applies (constant
// lr: lr_final == lr_init or epoch_count == 0, and no my_exit_tokens).
std::optional<double> schedule_progress(const TrainConfig& config, const ScheduleShape& shape, int64_t global_step);

// lr at an optimizer step. `global_step` counts steps since training began (restored on resume, so a resumed
// run does not warm up again; a fine-tune from weights starts at 0 and does); the decay uses the absolute
// step global_step + epoch_begin·epoch_steps.
double learning_rate(const TrainConfig& config, const ScheduleShape& shape, int64_t global_step);

// The decoupled weight decay at a step: weight_decay, or with weight_decay_final > 0
// weight_decay · exp(ln(weight_decay_final / weight_decay) · progress) with the lr schedule's progress (RWKV-LM;
// where RWKV-LM has no progress, a constant lr without my_exit_tokens, it stays at weight_decay).
double weight_decay_at(const TrainConfig& config, const ScheduleShape& shape, int64_t global_step);

// The global step (counted like global_step) after which the run is done and rwkv-final is saved:
// my_exit_tokens tokens when set (RWKV-LM saves rwkv-final and exits there); else with a magic prime RWKV-LM's
// rwkv-final step, one pass over the data (data::magic_final_step); else epoch_count mini-epochs. my_exit ends
// it after that absolute mini-epoch if that comes first.
int64_t schedule_end_step(const TrainConfig& config, const ScheduleShape& shape);

// Why the run ends where schedule_end_step says, for the startup table, e.g.
// "one pass over magic_prime 1619 chunks: 1619 // 12 - 1 = 133 steps, when RWKV-LM saves rwkv-final".
std::string schedule_end_reason(const TrainConfig& config, const ScheduleShape& shape);

}  // namespace rwkv
