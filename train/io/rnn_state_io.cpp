#include "train/io/rnn_state_io.h"

#include <filesystem>
#include <unistd.h>

#include "core/durable_file.h"
#include "train/io/hdf5.h"

namespace rwkv {

namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "rwkv4-rnn-state";
constexpr int64_t kFormatVersion = 1;

struct Dim {
  const char* name;
  int64_t value;
};

std::vector<Dim> dims_of(const ModelConfig& config_in) {
  const ModelConfig config = config_in.resolved();
  return {{"n_layer", config.n_layer},
          {"n_embd", config.n_embd},
          {"dim_att", config.dim_att},
          {"dim_ffn", config.dim_ffn},
          {"vocab_size", config.vocab_size}};
}

}  // namespace

void save_rnn_state(const std::string& path, const PromptState& state, const ModelConfig& config) {
  RWKV_CHECK(static_cast<int64_t>(state.logits.size()) == config.vocab_size, "rnn state: ", state.logits.size(),
             " logits for a vocabulary of ", config.vocab_size);
  const Tensor packed = pack_state(state.layers);  // [1, 5L, C] f32 on the CPU
  RWKV_CHECK(packed.size(0) == 1, "rnn state: expected a state of one sequence, got ", packed.size(0));
  const std::string temporary = temporary_path_for(path);
  try {
    {
      hdf5::File file = hdf5::File::create(temporary);
      hdf5::Group root = file.root();
      root.write_tensor("state", packed.squeeze(0).contiguous());
      root.write_tensor("logits", Tensor::from_vector(state.logits, {config.vocab_size}));
      root.set_string_attribute("format", kFormat);
      root.set_int_attribute("format_version", kFormatVersion);
      for (const Dim& dim : dims_of(config)) root.set_int_attribute(dim.name, dim.value);
      root.set_int_attribute("tokens", state.tokens);
      file.close();
    }
    fsync_path(temporary);
    std::error_code error;
    fs::rename(temporary, path, error);
    RWKV_CHECK(!error, "rnn state: cannot rename '", temporary, "' to '", path, "': ", error.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
}

PromptState load_rnn_state(const std::string& path, const ModelConfig& config, Device device) {
  const hdf5::File file = hdf5::File::open_read(path);
  const hdf5::Group root = file.root();
  RWKV_CHECK(root.has_attribute("format") && root.string_attribute("format") == kFormat, path,
             ": not an RNN state file (attribute 'format' is not \"", kFormat, "\")");
  const int64_t version = root.int_attribute("format_version");
  RWKV_CHECK(version == kFormatVersion, path, ": attribute 'format_version' is ", version, ", this build reads ",
             kFormatVersion);
  for (const Dim& dim : dims_of(config)) {
    RWKV_CHECK(root.has_attribute(dim.name), path, ": attribute '", dim.name, "' is missing");
    const int64_t stored = root.int_attribute(dim.name);
    RWKV_CHECK(stored == dim.value, path, ": attribute '", dim.name, "' = ", stored, " does not match the model's ",
               dim.value, " (the state was saved from another model)");
  }
  const int64_t n_layer = config.resolved().n_layer, n_embd = config.resolved().n_embd;
  const Shape state_shape = root.dataset_shape("state");
  RWKV_CHECK(state_shape == Shape({5 * n_layer, n_embd}), path, ": dataset '/state' has shape ",
             shape_str(state_shape), ", expected [", 5 * n_layer, ", ", n_embd, "]");
  const Shape logits_shape = root.dataset_shape("logits");
  RWKV_CHECK(logits_shape == Shape({config.vocab_size}), path, ": dataset '/logits' has shape ",
             shape_str(logits_shape), ", expected [", config.vocab_size, "]");
  PromptState state;
  state.layers = unpack_state(root.read_tensor("state", DType::f32).unsqueeze(0), n_layer);
  for (LayerState& layer : state.layers) {
    layer.att_previous = ag::Variable(layer.att_previous.data().to(device));
    layer.ffn_previous = ag::Variable(layer.ffn_previous.data().to(device));
    layer.wkv = ag::Variable(layer.wkv.data().to(device));
  }
  state.logits = root.read_tensor("logits", DType::f32).to_vector<float>();
  state.tokens = root.has_attribute("tokens") ? root.int_attribute("tokens") : 0;
  return state;
}

}  // namespace rwkv
