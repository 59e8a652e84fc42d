// RNN-state files: what `rwkv generate --state-out` writes after the prompt and `--state-in` continues from, so
// a long prompt is read once. HDF5, written through a temporary file and a rename (never half a file):
//   /state   float32 [5 * n_layer, n_embd], spec §8.2's layout (5i+0 ffn previous, 5i+1 att previous,
//            5i+2 aa, 5i+3 bb, 5i+4 pp for layer i)
//   /logits  float32 [vocab_size], the logits after the last token read (what the next token is drawn from)
//   attributes of /: format = "rwkv4-rnn-state", format_version = 1, the model's n_layer, n_embd, dim_att,
//   dim_ffn and vocab_size, and tokens (how many tokens the state has read).
#pragma once

#include <string>

#include "train/model/generate.h"

namespace rwkv {

void save_rnn_state(const std::string& path, const PromptState& state, const ModelConfig& config);

// Reads a state for a model of `config` onto `device`. Throws naming the file and the field when the file is
// not a state file or its dimensions differ from the model's.
PromptState load_rnn_state(const std::string& path, const ModelConfig& config, Device device);

}  // namespace rwkv
