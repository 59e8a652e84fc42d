#include "train/io/checkpoint.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>

#include "core/durable_file.h"
#include "train/io/file_seal.h"
#include "train/io/hdf5.h"
#include "train/io/model_io.h"

namespace rwkv {

namespace fs = std::filesystem;

namespace {

void write_contents(hdf5::File& file, const Rwkv4& model, const Optimizer& optimizer, const TrainState& state) {
  save_model(model, file);
  hdf5::Group opt = file.root().create_group("optimizer");
  opt.set_int_attribute("step", optimizer.step_count());
  opt.set_string_attribute("type", optimizer.slots().empty() || optimizer.slots()[0].exp_avg.defined() ? "adam"
                                                                                                      : "sgd");
  hdf5::Group exp_avg = opt.create_group("exp_avg"), exp_avg_sq = opt.create_group("exp_avg_sq");
  hdf5::Group scales = opt.create_group("lr_scale");
  for (const OptimizerSlot& slot : optimizer.slots()) {
    if (slot.exp_avg.defined()) {
      exp_avg.write_tensor(slot.name, slot.exp_avg);
      exp_avg_sq.write_tensor(slot.name, slot.exp_avg_sq);
    }
    scales.set_double_attribute(slot.name, slot.lr_scale);
  }
  hdf5::Group train = file.root().create_group("train");
  train.set_int_attribute("format_version", kCheckpointFormatVersion);
  train.set_int_attribute("global_step", state.global_step);
  train.set_int_attribute("tokens_seen", state.tokens_seen);
  train.set_int_attribute("mini_epoch", state.mini_epoch);
  train.set_int_attribute("world_size", state.world_size);
  train.set_string_attribute("rng_seed", std::to_string(state.rng_seed));  // uint64 as text: no sign issues
  train.set_string_attribute("rng_offset", std::to_string(state.rng_offset));
  train.set_string_attribute("sampler", state.sampler);
  train.set_string_attribute("config", state.config_ini);
  // Written last: a reader that finds it knows every group before it was complete when the file was closed.
  train.set_int_attribute("complete", 1);
}

}  // namespace

void save_checkpoint(const std::string& path, const Rwkv4& model, const Optimizer& optimizer, const TrainState& state) {
  const fs::path final_path(path);
  const fs::path directory = final_path.has_parent_path() ? final_path.parent_path() : fs::path(".");
  const std::string temporary = temporary_path_for(path);
  try {
    {
      hdf5::File file = hdf5::File::create(temporary, kSealBytes);
      write_contents(file, model, optimizer, state);
      file.close();
    }
    seal_file(temporary);  // from now on any damage to the file is detected before HDF5 parses it
    fsync_path(temporary, false);
    read_train_state(temporary);  // it must read back before it may replace anything
    std::error_code error;
    fs::rename(temporary, final_path, error);
    RWKV_CHECK(!error, "checkpoint: cannot rename '", temporary, "' to '", path, "': ", error.message());
    fsync_path(directory.string(), true);
    remove_stale_temporaries(directory.string(), [](std::string_view name) { return name.starts_with("rwkv-"); });
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(temporary, ignored);  // the previous checkpoint under `path`, if any, is untouched
    RWKV_FAIL("checkpoint: cannot save '", path, "' (earlier checkpoints are untouched): ", e.what());
  }
}

TrainState read_train_state(const std::string& path) {
  const hdf5::File file = hdf5::File::open_read(path);
  RWKV_CHECK(file.contains("model"), path, ": not a checkpoint (no /model group)");
  RWKV_CHECK(file.contains("optimizer") && file.contains("train"), path,
             ": not a training checkpoint (no /optimizer or /train group); weights-only files go to load_model");
  const hdf5::Group train = file.open_group("train");
  RWKV_CHECK(train.has_attribute("complete"), path, ": incomplete checkpoint (/train has no 'complete' mark)");
  const int64_t version = train.int_attribute("format_version");
  RWKV_CHECK(version == kCheckpointFormatVersion, path, ": checkpoint format version ", version,
             " is not supported (this build reads version ", kCheckpointFormatVersion, ")");
  TrainState state;
  state.global_step = train.int_attribute("global_step");
  state.tokens_seen = train.int_attribute("tokens_seen");
  state.mini_epoch = train.int_attribute("mini_epoch");
  state.world_size = train.int_attribute("world_size");
  // uint64 stored as decimal text: anything else (a sign, trailing junk, overflow) is a corrupt file.
  const auto unsigned_text = [&](const char* name) {
    const std::string text = train.string_attribute(name);
    uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    RWKV_CHECK(error == std::errc() && end == text.data() + text.size() && !text.empty(), path, ": /train attribute '",
               name, "' must be an unsigned decimal integer, got '", text, "'");
    return value;
  };
  state.rng_seed = unsigned_text("rng_seed");
  state.rng_offset = unsigned_text("rng_offset");
  state.sampler = train.string_attribute("sampler");
  state.config_ini = train.string_attribute("config");
  return state;
}

void load_checkpoint(const std::string& path, Rwkv4& model, Optimizer& optimizer) {
  read_train_state(path);
  const hdf5::File file = hdf5::File::open_read(path);
  const hdf5::Group opt = file.open_group("optimizer");
  const bool has_moments = opt.contains_group("exp_avg");
  // Read and check every moment before touching anything.
  std::vector<std::pair<Tensor, Tensor>> moments;
  for (const OptimizerSlot& slot : optimizer.slots()) {
    if (!slot.exp_avg.defined()) continue;
    RWKV_CHECK(has_moments, path, ": /optimizer has no Adam moments (the checkpoint was written by another ",
               "optimizer); start from its weights with load_model instead");
    for (const char* group : {"exp_avg", "exp_avg_sq"}) {
      const std::string name = std::string(group) + "/" + slot.name;
      RWKV_CHECK(opt.contains_dataset(name), path, ": /optimizer/", name, " is missing");
      RWKV_CHECK(opt.dataset_shape(name) == slot.parameter.shape(), path, ": /optimizer/", name, " has shape ",
                 shape_str(opt.dataset_shape(name)), " but the model's parameter is ",
                 shape_str(slot.parameter.shape()));
    }
    moments.emplace_back(opt.read_tensor("exp_avg/" + slot.name, DType::f32),
                         opt.read_tensor("exp_avg_sq/" + slot.name, DType::f32));
  }
  const int64_t step = opt.int_attribute("step");
  load_weights_into(model, path);
  size_t next = 0;
  for (OptimizerSlot& slot : optimizer.slots()) {
    if (!slot.exp_avg.defined()) continue;
    slot.exp_avg.copy_(moments[next].first);
    slot.exp_avg_sq.copy_(moments[next].second);
    ++next;
  }
  optimizer.set_step_count(step);
}

std::vector<CheckpointEntry> list_checkpoints(const std::string& proj_dir, std::vector<std::string>* problems) {
  std::vector<CheckpointEntry> entries;
  std::error_code error;
  if (!fs::is_directory(proj_dir, error)) return entries;
  for (const auto& item : fs::directory_iterator(proj_dir, error)) {
    const std::string name = item.path().filename().string();
    if (!item.is_regular_file() || !name.starts_with("rwkv-") || !name.ends_with(".h5")) continue;
    try {
      entries.push_back({item.path().string(), read_train_state(item.path().string()).global_step});
    } catch (const std::exception& e) {
      if (problems) problems->push_back(e.what());
    }
  }
  std::sort(entries.begin(), entries.end(), [](const CheckpointEntry& a, const CheckpointEntry& b) {
    return a.global_step != b.global_step ? a.global_step > b.global_step : a.path > b.path;
  });
  return entries;
}

void rotate_checkpoints(const std::string& proj_dir, int64_t keep_last) {
  if (keep_last <= 0) return;
  const std::vector<CheckpointEntry> entries = list_checkpoints(proj_dir, nullptr);
  for (size_t i = static_cast<size_t>(keep_last); i < entries.size(); ++i) {
    if (fs::path(entries[i].path).filename() == "rwkv-final.h5") continue;
    std::error_code ignored;
    fs::remove(entries[i].path, ignored);
  }
}

}  // namespace rwkv
