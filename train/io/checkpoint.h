// Full-state checkpoints in HDF5: /model (fp32 master weights, as train/io/weights_io.h), /optimizer (Adam moments
// per parameter, step count and hyper-parameters), /train (global step, tokens seen, mini-epoch, sampler, RNG,
// world size, the resolved config text). Written atomically: a temporary file is written, flushed, fsynced and
// checked, then renamed over the final name, so a crash leaves either the old or the new file, never a torn one.
// The file is sealed (train/io/file_seal.h): later damage is reported by name before HDF5 reads it. Temporary files
// left by writers that were killed are removed by the next successful save.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/model/model.h"
#include "train/optim/optimizer.h"

namespace rwkv {

struct TrainState {
  int64_t global_step = 0;  // optimizer steps since training began: the data position and the schedule
  int64_t tokens_seen = 0;
  int64_t mini_epoch = 0;   // absolute mini-epoch of the next step
  int64_t world_size = 1;
  uint64_t rng_seed = 0;    // the counter-based RNG's whole state is (seed, offset)
  uint64_t rng_offset = 0;
  std::string sampler;      // description of the sample order, e.g. "magic_prime 389 (ctx_len 512, ...)"
  std::string config_ini;   // the resolved configuration
};

inline constexpr int64_t kCheckpointFormatVersion = 1;

void save_checkpoint(const std::string& path, const Rwkv4& model, const Optimizer& optimizer, const TrainState& state);

// Reads the training state and the config text (no tensors): quick, and enough to check a file is a complete
// checkpoint. Throws naming the file and what is missing.
TrainState read_train_state(const std::string& path);
// Restores weights, moments and the optimizer's step count into objects built for the same model; every
// name, shape and dtype is checked first, and nothing is modified unless all checks pass.
void load_checkpoint(const std::string& path, Rwkv4& model, Optimizer& optimizer);

// Checkpoint files of proj_dir (rwkv-*.h5), with their global steps, newest first. Unreadable or incomplete
// ones are listed in `problems` (one line each) and left out.
struct CheckpointEntry {
  std::string path;
  int64_t global_step;
};
std::vector<CheckpointEntry> list_checkpoints(const std::string& proj_dir, std::vector<std::string>* problems);
// Deletes the oldest step/epoch checkpoints beyond `keep_last` (0 keeps all); never the newest.
void rotate_checkpoints(const std::string& proj_dir, int64_t keep_last);

}  // namespace rwkv
