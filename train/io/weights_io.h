// Model weights in HDF5: group /model holds one float32 dataset per parameter under its official state_dict
// name (emb.weight, blocks.0.ln0.weight, blocks.3.att.time_decay, ...; time_mix_* are [1, 1, C]), written in
// state_dict order, and the int64 attributes n_layer, n_embd, dim_att, dim_ffn, vocab_size, ctx_len. Trainer
// checkpoints are the same file with further groups (/optimizer, /train) next to /model.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "train/io/hdf5.h"
#include "train/model/model_config.h"

namespace rwkv {

// (official name, tensor) in state_dict order.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

inline constexpr const char* kModelGroupName = "model";

// Writes /model into an open file (fails if it exists). Tensors of any float dtype and device are stored as
// float32; names must be unique.
void write_model_weights(hdf5::File& file, const ModelConfig& dims, const NamedTensors& params);
// Creates (or truncates) `path` holding only /model.
void write_model_weights(const std::string& path, const ModelConfig& dims, const NamedTensors& params);

// The six dimension attributes of /model; each must be present, an integer and positive.
ModelConfig read_model_dims(const hdf5::File& file);
ModelConfig read_model_dims(const std::string& path);

// Fills every tensor of `params` (defined, any float dtype and device: values are converted) from /model after
// checking that the stored dims equal `expected`, that the file holds exactly these names, and that each dataset
// is a float dataset of the tensor's shape (float64/float16/bfloat16 datasets are converted). Every mismatch is
// listed, one per line, as "FILE: /model/NAME: what is wrong"; nothing is modified unless all checks pass.
void read_model_weights(const hdf5::File& file, const ModelConfig& expected, NamedTensors& params);
void read_model_weights(const std::string& path, const ModelConfig& expected, NamedTensors& params);

}  // namespace rwkv
