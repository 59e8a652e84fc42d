// Builds small RWKV-4 models with random values in every parameter (not the init, where half the matrices are
// zero and the blocks are silent), for tests that must exercise every formula.
#pragma once

#include <cmath>

#include "core/rng.h"
#include "train/model/model.h"

namespace rwkv::testing {

inline void randomize_parameters(Rwkv4& model, uint64_t seed) {
  Generator generator(seed);
  for (auto& [name, parameter] : model.named_parameters()) {
    Tensor& value = parameter.mutable_data();
    auto has = [&](const char* piece) { return name.find(piece) != std::string::npos; };
    if (has("time_decay")) {
      generator.uniform_(value, -3.0f, 1.0f);
    } else if (has("time_first")) {
      generator.uniform_(value, -1.0f, 1.0f);
    } else if (has("time_mix")) {
      generator.uniform_(value, 0.0f, 1.0f);
    } else if (has("ln") && has(".weight")) {
      generator.uniform_(value, 0.5f, 1.5f);
    } else if (has("ln") && has(".bias")) {
      generator.uniform_(value, -0.5f, 0.5f);
    } else if (name == "emb.weight") {
      generator.uniform_(value, -1.0f, 1.0f);
    } else {
      const float bound = 1.5f / std::sqrt(static_cast<float>(value.size(1)));
      generator.uniform_(value, -bound, bound);
    }
  }
}

inline ModelConfig tiny_config() {
  ModelConfig config;
  config.n_layer = 2;
  config.n_embd = 64;
  config.vocab_size = 97;
  config.ctx_len = 32;
  return config;
}

}  // namespace rwkv::testing
