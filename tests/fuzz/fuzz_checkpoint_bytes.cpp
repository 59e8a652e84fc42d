// Fuzzes the HDF5 weights and checkpoint readers with raw file bytes: the input is written to a file and opened as
// a trainer checkpoint and as a weights file. Bad files may only throw an rwkv::Error naming the file.
// Not in scripts/fuzz.sh's default set: libhdf5 1.10 itself crashes on some corrupt files (e.g. a SEGV in H5HG_read
// for a corrupt global heap, corpus/fuzz_checkpoint_bytes/libhdf5_crash_*), which no reader on top can prevent.
// fuzz_checkpoint fuzzes the same readers with well-formed HDF5 files of adversarial content instead. Models the
// file describes are built only when they are tiny, so that a valid header asking for gigabytes is no crash.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/model_io.h"
#include "train/optimizer.h"

namespace {
bool tiny(const rwkv::ModelConfig& dims) {
  return dims.n_layer <= 4 && dims.n_embd <= 64 && dims.dim_att <= 64 && dims.dim_ffn <= 256 && dims.vocab_size <= 512;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  const std::string path = fuzz::write_scratch_file("checkpoint.h5", data, size);
  fuzz::expect_clean_errors(
      [&] {
        const TrainState state = read_train_state(path);
        fuzz::expect_clean_errors([&] { config_from_ini(state.config_ini, path); }, path);
      },
      path);
  fuzz::expect_clean_errors(
      [&] {
        const ModelConfig dims = read_model_dims(path);
        if (!tiny(dims)) return;
        const std::unique_ptr<Rwkv4> model = load_model(path);
        Optimizer optimizer(model->named_parameters(), TrainConfig{});
        load_checkpoint(path, *model, optimizer);
      },
      path);
  return 0;
}
