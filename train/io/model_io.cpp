#include "train/io/model_io.h"

#include "core/cuda_runtime.h"

namespace rwkv {

namespace {
NamedTensors tensors_of(const Rwkv4& model) {
  NamedTensors named;
  for (const auto& [name, parameter] : model.named_parameters()) named.emplace_back(name, parameter.data());
  return named;
}
}  // namespace

void save_model(const Rwkv4& model, hdf5::File& file) {
  write_model_weights(file, model.config(), tensors_of(model));
}

void save_model(const Rwkv4& model, const std::string& path) {
  write_model_weights(path, model.config(), tensors_of(model));
}

void load_weights_into(Rwkv4& model, const std::string& path) {
  ModelConfig expected = model.config();
  expected.ctx_len = read_model_dims(path).ctx_len;  // a different training context is fine (fine-tuning)
  NamedTensors named = tensors_of(model);
  read_model_weights(path, expected, named);
}

std::unique_ptr<Rwkv4> load_model(const std::string& path, int64_t ctx_len_override) {
  const ModelConfig dims = read_model_dims(path);
  ModelConfig config;
  try {
    config = dims.resolved();
  } catch (const Error& error) {  // dims that read fine but make no model (n_layer 1): say which file
    RWKV_FAIL(path, ": /model: ", error.what());
  }
  if (ctx_len_override > 0) config.ctx_len = ctx_len_override;
  auto model = std::make_unique<Rwkv4>(config);
  NamedTensors named = tensors_of(*model);
  read_model_weights(path, dims, named);
  return model;
}

Device parse_device(const std::string& name) {
  if (name == "auto") return cuda::device_count() > 0 ? Device::cuda(0) : Device::cpu();
  if (name == "cpu") return Device::cpu();
  int index = 0;
  if (name != "cuda") {
    RWKV_CHECK(name.starts_with("cuda:") && name.size() > 5 &&
                   name.find_first_not_of("0123456789", 5) == std::string::npos,
               "device: expected auto, cpu, cuda or cuda:N, got '", name, "'");
    index = std::stoi(name.substr(5));
  }
  cuda::check_device(index, "device");
  return Device::cuda(index);
}

}  // namespace rwkv
