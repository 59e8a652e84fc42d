// What both checkpoint fuzz targets do with a file: open it through every project reader of checkpoints and
// weights (train state, its config text, model dims, the model, the optimizer state). Models are built only
// when the file's dims are tiny, so that a valid header asking for gigabytes is no crash.
#pragma once

#include <string>

namespace rwkv::fuzz {

void read_checkpoint_every_way(const std::string& path);

}  // namespace rwkv::fuzz
