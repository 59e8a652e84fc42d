#include "checkpoint_readers.h"

#include <memory>

#include "fuzz_util.h"
#include "train/io/checkpoint.h"
#include "train/config/config.h"
#include "train/io/model_io.h"
#include "train/optim/optimizer.h"

namespace rwkv::fuzz {

namespace {

bool tiny(const ModelConfig& dims) {
  return dims.n_layer <= 4 && dims.n_embd <= 64 && dims.dim_att <= 64 && dims.dim_ffn <= 256 && dims.vocab_size <= 512;
}

}  // namespace

void read_checkpoint_every_way(const std::string& path) {
  expect_clean_errors(
      [&] {
        const TrainState state = read_train_state(path);
        expect_clean_errors([&] { config_from_ini(state.config_ini, path); }, path);
      },
      path);
  expect_clean_errors(
      [&] {
        const ModelConfig dims = read_model_dims(path);
        if (!tiny(dims)) return;
        const std::unique_ptr<Rwkv4> model = load_model(path);
        Optimizer optimizer(model->named_parameters(), TrainConfig{});
        load_checkpoint(path, *model, optimizer);
      },
      path);
}

}  // namespace rwkv::fuzz
