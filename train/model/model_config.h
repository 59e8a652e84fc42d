// The shape of an RWKV-4 model (spec §1.1).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/shape.h"

namespace rwkv {

struct ModelConfig {
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t dim_att = 0;  // 0 = n_embd
  int64_t dim_ffn = 0;  // 0 = 4 * n_embd
  int64_t vocab_size = 0;
  int64_t ctx_len = 1024;

  // Fills the defaults (dim_att = n_embd, dim_ffn = 4 * n_embd) and checks every field, naming the bad one.
  ModelConfig resolved() const;
  std::string describe() const;  // "L12-D768 (dim_att 768, dim_ffn 3072, vocab 50277, ctx 1024)"
  int64_t parameter_count() const;  // spec §1.8's formula
  bool operator==(const ModelConfig&) const = default;
};

// Official state-dict names and shapes of a base RWKV-4 model in state_dict order (spec §1.8); the same list
// as Rwkv4::named_parameters() without building the model.
std::vector<std::pair<std::string, Shape>> rwkv4_parameter_shapes(const ModelConfig& dims);

}  // namespace rwkv
