// Fuzzes the weights and checkpoint readers (train/io/weights_io.cpp, model_io.cpp, checkpoint.cpp, hdf5.cpp) with
// well-formed HDF5 files of adversarial content: the input decides, through FuzzedDataProvider, which groups,
// attributes (present or not, of which type and value) and datasets (right or wrong shape and dtype, extra or
// missing names) a checkpoint holds. The file is written with the HDF5 library, then read back as a trainer
// checkpoint and as weights: every problem must be an rwkv::Error naming the file. (Raw corrupt bytes, which also
// exercise libhdf5's own parser, are fuzz_checkpoint_bytes.)
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint_readers.h"
#include "fuzz_util.h"
#include "train/io/checkpoint.h"
#include "train/config/config.h"
#include "train/io/hdf5.h"
#include "train/io/model_io.h"
#include "train/optim/optimizer.h"

namespace {

using rwkv::hdf5::Group;

// An integer attribute: usually small and plausible, sometimes anything, a string or a double, or absent.
void write_int_attribute(FuzzedDataProvider& in, Group& group, const char* name, int64_t plausible) {
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 0: return;  // missing
    case 1: group.set_int_attribute(name, in.ConsumeIntegral<int64_t>()); return;
    case 2: group.set_string_attribute(name, in.ConsumeRandomLengthString(16)); return;
    case 3: group.set_double_attribute(name, in.ConsumeFloatingPoint<double>()); return;
    default: group.set_int_attribute(name, plausible + in.ConsumeIntegralInRange<int64_t>(-2, 2)); return;
  }
}

void write_string_attribute(FuzzedDataProvider& in, Group& group, const char* name, const std::string& plausible) {
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0: return;
    case 1: group.set_int_attribute(name, in.ConsumeIntegral<int64_t>()); return;
    case 2: group.set_string_attribute(name, in.ConsumeRandomLengthString(64)); return;
    default: group.set_string_attribute(name, plausible); return;
  }
}

// A dataset for `shape`: right, or wrong in shape, dtype or values, or absent.
void write_tensor(FuzzedDataProvider& in, Group& group, const std::string& name, rwkv::Shape shape) {
  using rwkv::DType;
  using rwkv::Tensor;
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: return;
    case 1: shape.push_back(1); break;                                   // extra dimension
    case 2: if (!shape.empty()) shape.back() += 1; break;                // wrong size
    case 3: group.write_tensor(name, Tensor::zeros(shape, DType::i64)); return;
    case 4: group.write_tensor(name, Tensor::full(shape, in.ConsumeFloatingPoint<double>(), DType::f64)); return;
    case 5: group.write_tensor(name, Tensor::zeros(shape, DType::bf16)); return;
    default: break;
  }
  group.write_tensor(name, Tensor::full(shape, in.ConsumeFloatingPointInRange<double>(-2, 2), DType::f32));
}

rwkv::ModelConfig plausible_dims(FuzzedDataProvider& in) {
  rwkv::ModelConfig dims;
  dims.n_layer = in.ConsumeIntegralInRange<int64_t>(2, 3);
  dims.n_embd = in.ConsumeIntegralInRange<int64_t>(1, 3) * 4;
  dims.dim_att = dims.n_embd;
  dims.dim_ffn = in.ConsumeIntegralInRange<int64_t>(1, 4) * 4;
  dims.vocab_size = in.ConsumeIntegralInRange<int64_t>(2, 12);
  dims.ctx_len = in.ConsumeIntegralInRange<int64_t>(1, 16);
  return dims;
}

void write_checkpoint(FuzzedDataProvider& in, const std::string& path) {
  const rwkv::ModelConfig dims = plausible_dims(in);
  const rwkv::Rwkv4 model(dims);  // its parameter names and shapes are what a real file holds
  rwkv::hdf5::File file = rwkv::hdf5::File::create(path);
  Group root = file.root();
  if (in.ConsumeProbability<float>() < 0.9f) {
    Group group = root.create_group("model");
    write_int_attribute(in, group, "n_layer", dims.n_layer);
    write_int_attribute(in, group, "n_embd", dims.n_embd);
    write_int_attribute(in, group, "dim_att", dims.dim_att);
    write_int_attribute(in, group, "dim_ffn", dims.dim_ffn);
    write_int_attribute(in, group, "vocab_size", dims.vocab_size);
    write_int_attribute(in, group, "ctx_len", dims.ctx_len);
    for (const auto& [name, parameter] : model.named_parameters()) write_tensor(in, group, name, parameter.data().shape());
    if (in.ConsumeBool()) write_tensor(in, group, in.ConsumeRandomLengthString(24) + "x", {2});
  }
  if (in.ConsumeProbability<float>() < 0.9f) {
    Group group = root.create_group("optimizer");
    write_int_attribute(in, group, "step", 3);
    write_string_attribute(in, group, "type", "adam");
    if (in.ConsumeBool()) {
      for (const char* moment : {"exp_avg", "exp_avg_sq"}) {
        Group moments = group.create_group(moment);
        for (const auto& [name, parameter] : model.named_parameters()) {
          write_tensor(in, moments, name, parameter.data().shape());
        }
      }
    }
  }
  if (in.ConsumeProbability<float>() < 0.9f) {
    Group group = root.create_group("train");
    write_int_attribute(in, group, "format_version", rwkv::kCheckpointFormatVersion);
    write_int_attribute(in, group, "global_step", 3);
    write_int_attribute(in, group, "tokens_seen", 96);
    write_int_attribute(in, group, "mini_epoch", 0);
    write_int_attribute(in, group, "world_size", 1);
    write_string_attribute(in, group, "rng_seed", "42");
    write_string_attribute(in, group, "rng_offset", "7");
    write_string_attribute(in, group, "sampler", "random");
    write_string_attribute(in, group, "config", in.ConsumeRandomLengthString(200));
    write_int_attribute(in, group, "complete", 1);
  }
  file.close();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  FuzzedDataProvider in(data, size);
  const std::string path = fuzz::scratch_dir() + "/checkpoint.h5";
  try {
    write_checkpoint(in, path);
  } catch (const rwkv::Error&) {
    return 0;  // a recipe the writer refuses (e.g. an extra dataset name with '/' or one already taken)
  }
  fuzz::read_checkpoint_every_way(path);
  return 0;
}
