#include "train/model_config.h"

#include "core/error.h"

namespace rwkv {

ModelConfig ModelConfig::resolved() const {
  ModelConfig r = *this;
  if (r.dim_att == 0) r.dim_att = r.n_embd;
  if (r.dim_ffn == 0) r.dim_ffn = 4 * r.n_embd;
  // n_layer >= 2: the official init divides by n_layer - 1 (spec §3.1).
  RWKV_CHECK(r.n_layer >= 2, "model: n_layer must be at least 2 (the RWKV-4 init divides by n_layer - 1), got ",
             r.n_layer);
  RWKV_CHECK(r.n_embd >= 2, "model: n_embd must be at least 2, got ", r.n_embd);
  RWKV_CHECK(r.dim_att >= 2, "model: dim_att must be at least 2 (or 0 for n_embd), got ", r.dim_att);
  RWKV_CHECK(r.dim_ffn >= 1, "model: dim_ffn must be positive (or 0 for 4 * n_embd), got ", r.dim_ffn);
  RWKV_CHECK(r.vocab_size >= 2, "model: vocab_size must be at least 2, got ", r.vocab_size);
  RWKV_CHECK(r.ctx_len >= 1, "model: ctx_len must be positive, got ", r.ctx_len);
  return r;
}

std::string ModelConfig::describe() const {
  // No validation here: this also describes bad configurations in error messages.
  return "L" + std::to_string(n_layer) + "-D" + std::to_string(n_embd) + " (dim_att " +
         std::to_string(dim_att ? dim_att : n_embd) + ", dim_ffn " + std::to_string(dim_ffn ? dim_ffn : 4 * n_embd) +
         ", vocab " + std::to_string(vocab_size) + ", ctx " + std::to_string(ctx_len) + ")";
}

int64_t ModelConfig::parameter_count() const {
  const ModelConfig r = resolved();
  const int64_t C = r.n_embd, A = r.dim_att, F = r.dim_ffn, V = r.vocab_size;
  const int64_t per_block = 4 * A * C + 2 * A + 3 * C + 2 * C * F + C * C + 2 * C + 4 * C;
  return r.n_layer * per_block + 2 * C + 2 * V * C + 2 * C;
}

}  // namespace rwkv
