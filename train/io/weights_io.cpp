#include "train/io/weights_io.h"

#include <array>
#include <unordered_set>

namespace rwkv {

namespace {

struct DimField {
  const char* name;
  int64_t ModelConfig::*member;
};

constexpr std::array<DimField, 6> kDimFields{{
    {"n_layer", &ModelConfig::n_layer},
    {"n_embd", &ModelConfig::n_embd},
    {"dim_att", &ModelConfig::dim_att},
    {"dim_ffn", &ModelConfig::dim_ffn},
    {"vocab_size", &ModelConfig::vocab_size},
    {"ctx_len", &ModelConfig::ctx_len},
}};

// A long list of mismatches (e.g. a model of another width) is cut to its first lines.
constexpr size_t kMaxListedProblems = 20;

[[noreturn]] void report_problems(const std::string& file_path, const std::vector<std::string>& problems) {
  if (problems.size() == 1) throw Error(problems.front());
  std::string message = file_path + ": the weights in /" + kModelGroupName + " do not match the model (" +
                        std::to_string(problems.size()) + " problems):";
  for (size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i) message += "\n  " + problems[i];
  if (problems.size() > kMaxListedProblems) {
    message += "\n  ... and " + std::to_string(problems.size() - kMaxListedProblems) + " more";
  }
  throw Error(message);
}

}  // namespace

void write_model_weights(hdf5::File& file, const ModelConfig& dims, const NamedTensors& params) {
  hdf5::Group root = file.root();
  const std::string where = root.object_path(kModelGroupName);
  std::unordered_set<std::string> seen;
  for (const auto& [name, tensor] : params) {
    RWKV_CHECK(!name.empty() && name.find('/') == std::string::npos, file.path(), ": ", where,
               ": invalid tensor name '", name, "'");
    RWKV_CHECK(seen.insert(name).second, file.path(), ": ", where, "/", name, ": the name appears twice");
    RWKV_CHECK(tensor.defined() && is_floating(tensor.dtype()), file.path(), ": ", where, "/", name,
               ": expected a floating-point tensor, got ", tensor.describe());
  }
  hdf5::Group model = root.create_group(kModelGroupName);
  for (const DimField& field : kDimFields) model.set_int_attribute(field.name, dims.*field.member);
  for (const auto& [name, tensor] : params) {
    model.write_tensor(name, tensor.dtype() == DType::f32 ? tensor : tensor.to(DType::f32));
  }
}

void write_model_weights(const std::string& path, const ModelConfig& dims, const NamedTensors& params) {
  hdf5::File file = hdf5::File::create(path);
  write_model_weights(file, dims, params);
  file.close();
}

ModelConfig read_model_dims(const hdf5::File& file) {
  const hdf5::Group model = file.open_group(kModelGroupName);
  ModelConfig dims;
  for (const DimField& field : kDimFields) {
    const int64_t value = model.int_attribute(field.name);
    RWKV_CHECK(value > 0, file.path(), ": ", model.path(), ": attribute ", field.name, " = ", value,
               " must be positive");
    dims.*field.member = value;
  }
  return dims;
}

ModelConfig read_model_dims(const std::string& path) { return read_model_dims(hdf5::File::open_read(path)); }

void read_model_weights(const hdf5::File& file, const ModelConfig& expected, NamedTensors& params) {
  const hdf5::Group model = file.open_group(kModelGroupName);
  std::vector<std::string> problems;

  for (const DimField& field : kDimFields) {
    const int64_t stored = model.int_attribute(field.name);
    if (stored != expected.*field.member) {
      problems.push_back(file.path() + ": " + model.path() + ": attribute " + field.name + " = " +
                         std::to_string(stored) + " does not match the model's " +
                         std::to_string(expected.*field.member));
    }
  }

  // Check every name, kind, type and shape before touching any tensor.
  std::unordered_set<std::string> wanted;
  for (const auto& [name, tensor] : params) {
    RWKV_CHECK(tensor.defined() && is_floating(tensor.dtype()), "read_model_weights: parameter ", name,
               " must be a defined floating-point tensor, got ", tensor.describe());
    wanted.insert(name);
    const std::string where = file.path() + ": " + model.object_path(name) + ": ";
    if (!model.contains(name)) {
      problems.push_back(where + "missing from the file");
    } else if (!model.contains_dataset(name)) {
      problems.push_back(where + "is not a dataset");
    } else if (const std::string type = model.dataset_type(name);
               type != "float32" && type != "float64" && type != "float16" && type != "bfloat16") {
      problems.push_back(where + "holds " + type + " values, expected float32");
    } else if (const Shape shape = model.dataset_shape(name); shape != tensor.shape()) {
      problems.push_back(where + "shape " + shape_str(shape) + " does not match the model's " +
                         shape_str(tensor.shape()));
    }
  }
  for (const std::string& name : model.members()) {
    if (!wanted.contains(name)) {
      problems.push_back(file.path() + ": " + model.object_path(name) + ": unexpected tensor (not in the model)");
    }
  }
  if (!problems.empty()) report_problems(file.path(), problems);

  for (auto& [name, tensor] : params) tensor.copy_(model.read_tensor(name, tensor.dtype()));
}

void read_model_weights(const std::string& path, const ModelConfig& expected, NamedTensors& params) {
  read_model_weights(hdf5::File::open_read(path), expected, params);
}

}  // namespace rwkv
