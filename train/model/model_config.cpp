#include "train/model/model_config.h"

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

std::vector<std::pair<std::string, Shape>> rwkv4_parameter_shapes(const ModelConfig& config) {
  const ModelConfig d = config.resolved();
  const int64_t V = d.vocab_size, C = d.n_embd, A = d.dim_att, F = d.dim_ffn;
  std::vector<std::pair<std::string, Shape>> shapes{{"emb.weight", {V, C}}};
  for (int64_t l = 0; l < d.n_layer; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    for (const char* ln : {"ln1", "ln2"}) {
      shapes.push_back({b + ln + ".weight", {C}});
      shapes.push_back({b + ln + ".bias", {C}});
    }
    if (l == 0) {
      shapes.push_back({b + "ln0.weight", {C}});
      shapes.push_back({b + "ln0.bias", {C}});
    }
    shapes.push_back({b + "att.time_decay", {A}});
    shapes.push_back({b + "att.time_first", {A}});
    for (const char* mix : {"k", "v", "r"}) shapes.push_back({b + "att.time_mix_" + mix, {1, 1, C}});
    shapes.push_back({b + "att.key.weight", {A, C}});
    shapes.push_back({b + "att.value.weight", {A, C}});
    shapes.push_back({b + "att.receptance.weight", {A, C}});
    shapes.push_back({b + "att.output.weight", {C, A}});
    shapes.push_back({b + "ffn.time_mix_k", {1, 1, C}});
    shapes.push_back({b + "ffn.time_mix_r", {1, 1, C}});
    shapes.push_back({b + "ffn.key.weight", {F, C}});
    shapes.push_back({b + "ffn.receptance.weight", {C, C}});
    shapes.push_back({b + "ffn.value.weight", {C, F}});
  }
  shapes.push_back({"ln_out.weight", {C}});
  shapes.push_back({"ln_out.bias", {C}});
  shapes.push_back({"head.weight", {V, C}});
  return shapes;
}

}  // namespace rwkv
