// Saving and loading an Rwkv4's weights in the HDF5 format of train/io/weights_io.h.
#pragma once

#include <memory>
#include <string>

#include "train/model/model.h"
#include "train/io/weights_io.h"

namespace rwkv {

void save_model(const Rwkv4& model, const std::string& path);
void save_model(const Rwkv4& model, hdf5::File& file);
// Builds the model the file describes (ctx_len_override > 0 replaces the stored ctx_len) and loads it.
std::unique_ptr<Rwkv4> load_model(const std::string& path, int64_t ctx_len_override = 0);
// Loads weights into an existing model, requiring the file's shapes to match the model's (ctx_len may differ).
void load_weights_into(Rwkv4& model, const std::string& path);

// "cpu", "cuda", "cuda:N" or "auto" (the first GPU when one is present, else the CPU).
Device parse_device(const std::string& name);

}  // namespace rwkv
