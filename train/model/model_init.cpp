#include "train/model/model_init.h"

#include <cmath>

#include "core/rng.h"

namespace rwkv {

namespace {

bool contains(const std::string& name, const char* piece) { return name.find(piece) != std::string::npos; }

void fill(ag::Variable& parameter, const std::vector<double>& values) {
  RWKV_CHECK(static_cast<int64_t>(values.size()) == parameter.data().numel(), "init: ", values.size(),
             " values for ", parameter.describe());
  float* out = parameter.mutable_data().data<float>();
  for (size_t i = 0; i < values.size(); ++i) out[i] = static_cast<float>(values[i]);
}

// §3.1: the constructor values of one layer's time_* parameters, computed in double, stored fp32.
void initialize_time_parameters(Block& block, int64_t layer, const ModelConfig& config) {
  const int64_t C = config.n_embd, A = config.dim_att, L = config.n_layer;
  const double ratio_0_to_1 = static_cast<double>(layer) / static_cast<double>(L - 1);
  const double ratio_1_to_almost0 = 1.0 - static_cast<double>(layer) / static_cast<double>(L);
  std::vector<double> decay(static_cast<size_t>(A)), first(static_cast<size_t>(A));
  for (int64_t h = 0; h < A; ++h) {
    decay[static_cast<size_t>(h)] =
        -5.0 + 8.0 * std::pow(static_cast<double>(h) / static_cast<double>(A - 1), 0.7 + 1.3 * ratio_0_to_1);
    first[static_cast<size_t>(h)] = std::log(0.3) + 0.5 * static_cast<double>((h + 1) % 3 - 1);
  }
  std::vector<double> mix_k(static_cast<size_t>(C)), mix_v(static_cast<size_t>(C)), mix_r(static_cast<size_t>(C));
  for (int64_t i = 0; i < C; ++i) {
    const double ramp = static_cast<double>(i) / static_cast<double>(C);  // i / C: never reaches 1
    mix_k[static_cast<size_t>(i)] = std::pow(ramp, ratio_1_to_almost0);
    mix_v[static_cast<size_t>(i)] = std::pow(ramp, ratio_1_to_almost0) + 0.3 * ratio_0_to_1;
    mix_r[static_cast<size_t>(i)] = std::pow(ramp, 0.5 * ratio_1_to_almost0);
  }
  fill(block.att->time_decay, decay);
  fill(block.att->time_first, first);
  fill(block.att->time_mix_k, mix_k);
  fill(block.att->time_mix_v, mix_v);
  fill(block.att->time_mix_r, mix_r);
  fill(block.ffn->time_mix_k, mix_k);
  fill(block.ffn->time_mix_r, mix_k);
}

}  // namespace

void initialize_rwkv4(Rwkv4& model, double lr_init, uint64_t seed) {
  const ModelConfig& config = model.config();
  Generator generator(seed);
  for (auto& [name, parameter] : model.named_parameters()) {
    Tensor& value = parameter.mutable_data();
    if (contains(name, "ln_") || contains(name, ".ln")) {
      value.fill_(contains(name, ".weight") ? 1.0 : 0.0);
    } else if (contains(name, "time_")) {
      continue;  // set per block below
    } else if (name == "emb.weight") {
      generator.uniform_(value, static_cast<float>(-lr_init), static_cast<float>(lr_init));
    } else {
      RWKV_CHECK(value.dim() == 2, "init: unexpected parameter ", name, " ", value.describe());
      const int64_t rows = value.size(0), cols = value.size(1);
      double scale = 1.0;
      for (const char* zeroed : {".att.key.", ".att.receptance.", ".att.output.", ".ffn.value.", ".ffn.receptance."}) {
        if (contains(name, zeroed)) scale = 0.0;
      }
      if (name == "head.weight") scale = 0.5;
      if (scale == 0.0) {
        value.zero_();
      } else {
        const double gain = rows > cols ? std::sqrt(static_cast<double>(rows) / static_cast<double>(cols)) : 1.0;
        value.copy_(orthogonal(rows, cols, gain * scale, generator));
      }
    }
  }
  for (size_t layer = 0; layer < model.blocks().size(); ++layer) {
    initialize_time_parameters(*model.blocks()[layer], static_cast<int64_t>(layer), config);
  }
}

}  // namespace rwkv
