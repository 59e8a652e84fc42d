// HDF5 wrapper and model weight files: bit-exact round trips, and a clear rwkv::Error naming the file and the
// object for every kind of bad input (missing, not HDF5, truncated, wrong names, shapes, types or dims).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "train/io/hdf5.h"
#include "train/io/weights_io.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

using testing::ScratchDir;

using testing::expect_error;

std::vector<uint32_t> float_bits(const Tensor& t) {
  std::vector<uint32_t> bits;
  for (float value : t.to_vector<float>()) bits.push_back(std::bit_cast<uint32_t>(value));
  return bits;
}

ModelConfig tiny_dims() { return ModelConfig{2, 32, 32, 64, 11, 16}; }

// The state_dict of spec §1.8 for `dims`, with random values (never the init, so zeros cannot hide bugs).
NamedTensors tiny_model(const ModelConfig& d, uint64_t seed) {
  NamedTensors params;
  for (const auto& [name, shape] : rwkv4_parameter_shapes(d)) {
    params.emplace_back(name, testing::random_tensor(shape, seed++, DType::f32, -2.0f, 2.0f));
  }
  return params;
}

// Zero tensors of the same names and shapes, for reading into.
NamedTensors blank_like(const NamedTensors& params, DType dtype = DType::f32) {
  NamedTensors blank;
  for (const auto& [name, tensor] : params) blank.emplace_back(name, Tensor::zeros(tensor.shape(), dtype));
  return blank;
}

Tensor& find(NamedTensors& params, const std::string& name) {
  for (auto& [n, t] : params) {
    if (n == name) return t;
  }
  throw Error("no parameter " + name);
}

// ---- the HDF5 wrapper ----

TEST(TrainWeightsHdf5, DatasetsRoundTripEveryDtypeAndRank) {
  ScratchDir dir;
  const std::string path = dir.file("tensors.h5");
  const Tensor f32 = testing::random_tensor({2, 3, 4, 5}, 1);
  const Tensor f64 = testing::random_tensor({7}, 2, DType::f64);
  const Tensor bf16 = testing::random_tensor({3, 5}, 3, DType::bf16);
  const Tensor i64 = Tensor::from_vector<int64_t>({-5, 0, std::numeric_limits<int64_t>::max()}, {3, 1});
  const Tensor i32 = Tensor::from_vector<int32_t>({-7, 8}, {2});
  const Tensor u16 = Tensor::from_vector<uint16_t>({0, 65535, 50276}, {3});
  const Tensor scalar = Tensor::from_vector<double>({3.25}, {});
  const Tensor empty = Tensor::zeros({0, 4});
  const Tensor strided = testing::random_tensor({4, 6}, 4).transpose(0, 1);  // not contiguous
  {
    hdf5::File file = hdf5::File::create(path);
    hdf5::Group group = file.root().create_group("g");
    group.write_tensor("f32", f32);
    group.write_tensor("f64", f64);
    group.write_tensor("bf16", bf16);
    group.write_tensor("i64", i64);
    group.write_tensor("i32", i32);
    group.write_tensor("u16", u16);
    group.write_tensor("scalar", scalar);
    group.write_tensor("empty", empty);
    group.write_tensor("strided", strided);
    file.close();
  }
  const hdf5::File file = hdf5::File::open_read(path);
  const hdf5::Group group = file.open_group("/g");
  EXPECT_EQ(group.path(), "/g");
  EXPECT_EQ(group.members(),
            (std::vector<std::string>{"f32", "f64", "bf16", "i64", "i32", "u16", "scalar", "empty", "strided"}));
  EXPECT_EQ(group.dataset_type("bf16"), "bfloat16");
  EXPECT_EQ(group.dataset_type("u16"), "uint16");
  EXPECT_EQ(group.dataset_shape("f32"), (Shape{2, 3, 4, 5}));

  const Tensor f32_back = group.read_tensor("f32");
  EXPECT_EQ(f32_back.dtype(), DType::f32);
  EXPECT_EQ(f32_back.shape(), f32.shape());
  EXPECT_EQ(float_bits(f32_back), float_bits(f32));
  EXPECT_EQ(group.read_tensor("f64").to_vector<double>(), f64.to_vector<double>());
  const Tensor bf16_back = group.read_tensor("bf16");
  EXPECT_EQ(bf16_back.dtype(), DType::bf16);
  EXPECT_EQ(float_bits(bf16_back), float_bits(bf16));
  EXPECT_EQ(group.read_tensor("i64").to_vector<int64_t>(), i64.to_vector<int64_t>());
  EXPECT_EQ(group.read_tensor("i64").shape(), (Shape{3, 1}));
  EXPECT_EQ(group.read_tensor("i32").dtype(), DType::i32);
  EXPECT_EQ(group.read_tensor("u16").to_vector<int64_t>(), u16.to_vector<int64_t>());
  const Tensor scalar_back = group.read_tensor("scalar");
  EXPECT_EQ(scalar_back.dim(), 0);
  EXPECT_EQ(scalar_back.to_vector<double>(), std::vector<double>{3.25});
  EXPECT_EQ(group.read_tensor("empty").shape(), (Shape{0, 4}));
  EXPECT_EQ(float_bits(group.read_tensor("strided")), float_bits(strided));

  // Conversions: floats to any float dtype, integers to any integer dtype.
  EXPECT_EQ(group.read_tensor("f64", DType::f32).to_vector<float>(), f64.to(DType::f32).to_vector<float>());
  EXPECT_EQ(float_bits(group.read_tensor("f32", DType::bf16)), float_bits(f32.to(DType::bf16)));
  EXPECT_EQ(group.read_tensor("u16", DType::i64).to_vector<int64_t>(), u16.to_vector<int64_t>());
  expect_error([&] { group.read_tensor("i64", DType::f32); }, {path, "/g/i64", "int64", "f32"});
  expect_error([&] { group.read_tensor("f32", DType::i64); }, {path, "/g/f32", "float32"});
}

TEST(TrainWeightsHdf5, ReadsFloat16DatasetsAsF32) {
  ScratchDir dir;
  const std::string path = dir.file("half.h5");
  {  // Write IEEE half values with the C API, as h5py stores numpy float16.
    hdf5::File::create(path).close();
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t half = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(half, 15, 10, 5, 0, 10);
    H5Tset_size(half, 2);
    H5Tset_ebias(half, 15);
    const hsize_t dims[1] = {4};
    const hid_t space = H5Screate_simple(1, dims, nullptr);
    const hid_t dataset = H5Dcreate2(file, "half", half, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const uint16_t bits[4] = {0x3C00, 0xC100, 0x0400, 0x7BFF};  // 1, -2.5, 2^-14, 65504
    ASSERT_GE(H5Dwrite(dataset, half, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits), 0);
    H5Dclose(dataset);
    H5Sclose(space);
    H5Tclose(half);
    H5Fclose(file);
  }
  const hdf5::Group root = hdf5::File::open_read(path).root();
  EXPECT_EQ(root.dataset_type("half"), "float16");
  const Tensor values = root.read_tensor("half");
  EXPECT_EQ(values.dtype(), DType::f32);
  EXPECT_EQ(values.to_vector<float>(), (std::vector<float>{1.0f, -2.5f, std::ldexp(1.0f, -14), 65504.0f}));
}

TEST(TrainWeightsHdf5, AttributesAndMembers) {
  ScratchDir dir;
  const std::string path = dir.file("attrs.h5");
  {
    hdf5::File file = hdf5::File::create(path);
    hdf5::Group train = file.root().create_group("train");
    train.set_int_attribute("step", -42);
    train.set_int_attribute("big", std::numeric_limits<int64_t>::max());
    train.set_double_attribute("lr", 6e-4);
    train.set_string_attribute("note", "ünïcode, commas, \"quotes\"");
    train.set_string_attribute("empty", "");
    train.set_int_attribute("step", 7);  // replaces
    train.create_group("nested").create_group("deeper");
    file.close();
  }
  hdf5::File file = hdf5::File::open_read(path);
  const hdf5::Group train = file.open_group("train");
  EXPECT_EQ(train.int_attribute("step"), 7);
  EXPECT_EQ(train.int_attribute("big"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(train.double_attribute("lr"), 6e-4);
  EXPECT_EQ(train.double_attribute("step"), 7.0);
  EXPECT_EQ(train.string_attribute("note"), "ünïcode, commas, \"quotes\"");
  EXPECT_EQ(train.string_attribute("empty"), "");
  EXPECT_TRUE(train.has_attribute("lr"));
  EXPECT_FALSE(train.has_attribute("nope"));
  EXPECT_EQ(train.attribute_names(), (std::vector<std::string>{"big", "empty", "lr", "note", "step"}));
  EXPECT_TRUE(file.contains("train/nested/deeper"));
  EXPECT_TRUE(train.contains_group("nested"));
  EXPECT_FALSE(train.contains_dataset("nested"));
  EXPECT_FALSE(file.contains("train/missing/deeper"));
  EXPECT_FALSE(file.contains("nothing"));
  EXPECT_EQ(file.open_group("train/nested").path(), "/train/nested");

  expect_error([&] { train.int_attribute("lr"); }, {path, "/train", "lr", "float64", "integer"});
  expect_error([&] { train.int_attribute("nope"); }, {path, "/train", "attribute nope is missing"});
  expect_error([&] { train.string_attribute("step"); }, {path, "/train", "step", "string"});
  expect_error([&] { file.open_group("train/missing"); }, {path, "/train/missing", "no such group"});
  expect_error([&] { train.read_tensor("nested"); }, {path, "/train/nested", "is not a dataset"});
  expect_error([&] { train.read_tensor("absent"); }, {path, "/train/absent", "no such dataset"});
}

TEST(TrainWeightsHdf5, WritingTwiceOrIntoAReadOnlyFileFails) {
  ScratchDir dir;
  const std::string path = dir.file("twice.h5");
  {
    hdf5::File file = hdf5::File::create(path);
    hdf5::Group root = file.root();
    root.write_tensor("x", Tensor::zeros({2}));
    expect_error([&] { root.write_tensor("x", Tensor::zeros({2})); }, {path, "/x", "already exists"});
    expect_error([&] { root.create_group("x"); }, {path, "/x", "already exists"});
    root.remove("x");
    EXPECT_FALSE(root.contains("x"));
    file.close();
  }
  hdf5::Group root = hdf5::File::open_read(path).root();
  expect_error([&] { root.write_tensor("y", Tensor::zeros({2})); }, {path, "/y", "cannot create the dataset"});
  expect_error([] { hdf5::File::create("/nonexistent-dir-rwkv/x.h5"); },
               {"/nonexistent-dir-rwkv/x.h5", "cannot create"});
}

TEST(TrainWeightsHdf5, NoHdf5ObjectStaysOpen) {
  // A leaked identifier would keep the file open (and locked) for the rest of the process.
  const ssize_t open_before = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  ScratchDir dir;
  const std::string path = dir.file("leak.h5");
  const ModelConfig dims = tiny_dims();
  const NamedTensors params = tiny_model(dims, 5);
  write_model_weights(path, dims, params);
  NamedTensors loaded = blank_like(params);
  read_model_weights(path, dims, loaded);
  ModelConfig wrong = dims;
  wrong.vocab_size = 12;
  EXPECT_THROW(read_model_weights(path, wrong, loaded), Error);
  {
    const hdf5::File file = hdf5::File::open_read(path);
    const hdf5::Group model = file.open_group("model");
    EXPECT_THROW(model.read_tensor("nope"), Error);
    EXPECT_THROW(model.int_attribute("nope"), Error);
    EXPECT_EQ(model.members().size(), params.size());
  }
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), open_before);
  std::filesystem::remove(path);  // and the file can go
  EXPECT_FALSE(std::filesystem::exists(path));
}

// ---- model weight files ----

TEST(TrainWeightsIo, RoundTripIsBitExactAndKeepsStateDictOrder) {
  ScratchDir dir;
  const std::string path = dir.file("weights.h5");
  const ModelConfig dims = tiny_dims();
  NamedTensors params = tiny_model(dims, 100);
  // Values that any conversion on the way would disturb.
  std::vector<float> special = find(params, "ln_out.bias").to_vector<float>();
  special[0] = -0.0f;
  special[1] = std::numeric_limits<float>::denorm_min();
  special[2] = std::numeric_limits<float>::infinity();
  special[3] = std::numeric_limits<float>::quiet_NaN();
  special[4] = std::numeric_limits<float>::max();
  special[5] = std::nextafter(1.0f, 2.0f);
  find(params, "ln_out.bias") = Tensor::from_vector(special, {dims.n_embd});
  write_model_weights(path, dims, params);

  EXPECT_EQ(read_model_dims(path), dims);
  NamedTensors loaded = blank_like(params);
  read_model_weights(path, dims, loaded);
  ASSERT_EQ(loaded.size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(loaded[i].first, params[i].first);
    EXPECT_EQ(loaded[i].second.shape(), params[i].second.shape()) << params[i].first;
    EXPECT_EQ(float_bits(loaded[i].second), float_bits(params[i].second)) << params[i].first;
  }

  const hdf5::File file = hdf5::File::open_read(path);
  const hdf5::Group model = file.open_group("model");
  std::vector<std::string> names;
  for (const auto& [name, tensor] : params) names.push_back(name);
  EXPECT_EQ(model.members(), names);
  EXPECT_EQ(model.dataset_type("blocks.0.att.time_mix_k"), "float32");
  EXPECT_EQ(model.dataset_shape("blocks.0.att.time_mix_k"), (Shape{1, 1, dims.n_embd}));
  EXPECT_EQ(model.int_attribute("dim_ffn"), dims.dim_ffn);
}

TEST(TrainWeightsIo, CheckpointFileCarriesMoreGroupsAndBf16Parameters) {
  ScratchDir dir;
  const std::string path = dir.file("checkpoint.h5");
  const ModelConfig dims = tiny_dims();
  NamedTensors params = tiny_model(dims, 200);
  NamedTensors bf16_params;
  for (const auto& [name, tensor] : params) bf16_params.emplace_back(name, tensor.to(DType::bf16));
  {
    hdf5::File file = hdf5::File::create(path);
    write_model_weights(file, dims, bf16_params);
    hdf5::Group train = file.root().create_group("train");
    train.set_int_attribute("step", 3);
    file.root().create_group("optimizer").write_tensor("emb.weight.exp_avg", Tensor::zeros({dims.vocab_size, 4}));
    expect_error([&] { write_model_weights(file, dims, params); }, {path, "/model", "already exists"});
    file.close();
  }
  NamedTensors loaded = blank_like(params, DType::bf16);
  read_model_weights(path, dims, loaded);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(float_bits(loaded[i].second), float_bits(bf16_params[i].second)) << params[i].first;
  }
  EXPECT_EQ(hdf5::File::open_read(path).open_group("train").int_attribute("step"), 3);
}

TEST(TrainWeightsIo, MissingFile) {
  ScratchDir dir;
  const std::string path = dir.file("absent.h5");
  expect_error([&] { read_model_dims(path); }, {path, "no such file"});
  NamedTensors params = blank_like(tiny_model(tiny_dims(), 1));
  expect_error([&] { read_model_weights(path, tiny_dims(), params); }, {path, "no such file"});
  expect_error([&] { read_model_dims(dir.file("")); }, {"not a regular file"});
}

TEST(TrainWeightsIo, TextFileIsNotHdf5) {
  ScratchDir dir;
  const std::string path = dir.file("notes.h5");
  std::ofstream(path) << "emb.weight = [1, 2, 3]\nthis is not an HDF5 file\n";
  expect_error([&] { read_model_dims(path); }, {path, "not an HDF5 file"});
  const std::string empty = dir.file("empty.h5");
  { std::ofstream create_empty(empty); }
  expect_error([&] { read_model_dims(empty); }, {empty, "not an HDF5 file"});
}

TEST(TrainWeightsIo, TruncatedFile) {
  ScratchDir dir;
  const std::string path = dir.file("truncated.h5");
  const ModelConfig dims = tiny_dims();
  write_model_weights(path, dims, tiny_model(dims, 1));
  const std::uintmax_t size = std::filesystem::file_size(path);
  for (const auto keep : {size / 2, size - 1, std::uintmax_t{100}}) {
    std::filesystem::resize_file(path, keep);
    NamedTensors params = blank_like(tiny_model(dims, 1));
    const std::string message = expect_error([&] { read_model_weights(path, dims, params); }, {path});
    EXPECT_TRUE(message.find("truncated") != std::string::npos || message.find("not an HDF5") != std::string::npos)
        << message;
  }
}

TEST(TrainWeightsIo, MissingModelGroupOrDimsAttribute) {
  ScratchDir dir;
  const std::string path = dir.file("other.h5");
  {
    hdf5::File file = hdf5::File::create(path);
    file.root().create_group("optimizer");
    file.close();
  }
  expect_error([&] { read_model_dims(path); }, {path, "/model", "no such group"});

  const ModelConfig dims = tiny_dims();
  write_model_weights(path, dims, tiny_model(dims, 1));
  {
    hdf5::File file = hdf5::File::open_read_write(path);
    hdf5::Group model = file.open_group("model");
    model.set_string_attribute("n_embd", "32");
    file.close();
  }
  expect_error([&] { read_model_dims(path); }, {path, "/model", "n_embd", "string", "integer"});
  {
    hdf5::File file = hdf5::File::open_read_write(path);
    file.open_group("model").set_int_attribute("n_embd", 0);
    file.close();
  }
  expect_error([&] { read_model_dims(path); }, {path, "/model", "n_embd = 0", "positive"});
}

TEST(TrainWeightsIo, MissingTensorIsNamed) {
  ScratchDir dir;
  const std::string path = dir.file("missing.h5");
  const ModelConfig dims = tiny_dims();
  NamedTensors params = tiny_model(dims, 1);
  NamedTensors written;
  for (const auto& entry : params) {
    if (entry.first != "blocks.1.att.key.weight") written.push_back(entry);
  }
  write_model_weights(path, dims, written);
  NamedTensors loaded = blank_like(params);
  const std::string message = expect_error([&] { read_model_weights(path, dims, loaded); },
                                           {path + ": /model/blocks.1.att.key.weight: missing from the file"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one problem, one line: " << message;
  const std::vector<float> zeros(static_cast<size_t>(dims.vocab_size * dims.n_embd), 0.0f);
  EXPECT_EQ(find(loaded, "emb.weight").to_vector<float>(), zeros) << "nothing is read when a check fails";
}

TEST(TrainWeightsIo, ExtraTensorIsNamed) {
  ScratchDir dir;
  const std::string path = dir.file("extra.h5");
  const ModelConfig dims = tiny_dims();
  NamedTensors params = tiny_model(dims, 1);
  NamedTensors written = params;
  written.emplace_back("head_q.weight", Tensor::zeros({8, dims.n_embd}));
  write_model_weights(path, dims, written);
  NamedTensors loaded = blank_like(params);
  expect_error([&] { read_model_weights(path, dims, loaded); },
               {path + ": /model/head_q.weight: unexpected tensor (not in the model)"});
}

TEST(TrainWeightsIo, WrongShapeIsNamedWithBothShapes) {
  ScratchDir dir;
  const std::string path = dir.file("shape.h5");
  const ModelConfig dims{2, 64, 64, 128, 11, 16};
  NamedTensors params = tiny_model(dims, 1);
  find(params, "blocks.0.att.key.weight") = Tensor::zeros({64, 32});
  write_model_weights(path, dims, params);
  NamedTensors loaded = blank_like(tiny_model(dims, 1));
  const std::string message = expect_error(
      [&] { read_model_weights(path, dims, loaded); },
      {path + ": /model/blocks.0.att.key.weight: shape [64, 32] does not match the model's [64, 64]"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(TrainWeightsIo, WrongDimsAttributeListsEveryProblem) {
  ScratchDir dir;
  const std::string path = dir.file("dims.h5");
  const ModelConfig stored = tiny_dims();
  write_model_weights(path, stored, tiny_model(stored, 1));
  ModelConfig expected = stored;
  expected.ctx_len = 1024;
  NamedTensors loaded = blank_like(tiny_model(stored, 1));
  expect_error([&] { read_model_weights(path, expected, loaded); },
               {path + ": /model: attribute ctx_len = 16 does not match the model's 1024"});

  // A model twice as wide: the dims and every shape disagree; the list is cut after 20 lines.
  ModelConfig wider = stored;
  wider.n_embd = 64;
  NamedTensors wide = blank_like(tiny_model(wider, 1));
  const std::string message = expect_error(
      [&] { read_model_weights(path, wider, wide); },
      {path + ": the weights in /model do not match the model", "attribute n_embd = 32 does not match the model's 64",
       path + ": /model/emb.weight: shape [11, 32] does not match the model's [11, 64]", "more"});
}

TEST(TrainWeightsIo, IntegerDatasetIsRejected) {
  ScratchDir dir;
  const std::string path = dir.file("ints.h5");
  const ModelConfig dims = tiny_dims();
  NamedTensors params = tiny_model(dims, 1);
  {
    hdf5::File file = hdf5::File::create(path);
    NamedTensors others;
    for (const auto& entry : params) {
      if (entry.first != "head.weight") others.push_back(entry);
    }
    write_model_weights(file, dims, others);
    file.open_group("model").write_tensor("head.weight", Tensor::zeros({dims.vocab_size, dims.n_embd}, DType::i64));
    file.close();
  }
  NamedTensors loaded = blank_like(params);
  expect_error([&] { read_model_weights(path, dims, loaded); },
               {path + ": /model/head.weight: holds int64 values, expected float32"});
}

TEST(TrainWeightsIo, WriterRejectsBadInput) {
  ScratchDir dir;
  const ModelConfig dims = tiny_dims();
  NamedTensors twice{{"a", Tensor::zeros({2})}, {"a", Tensor::zeros({2})}};
  expect_error([&] { write_model_weights(dir.file("w.h5"), dims, twice); }, {"/model/a", "appears twice"});
  NamedTensors ints{{"a", Tensor::zeros({2}, DType::i64)}};
  expect_error([&] { write_model_weights(dir.file("w.h5"), dims, ints); }, {"/model/a", "floating-point"});
}

}  // namespace
}  // namespace rwkv
