#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "train/model/model.h"
#include "train/model/model_init.h"
#include "tests/test_util.h"
#include "tests/train/model/model_test_util.h"

namespace rwkv {
namespace {

using testing::random_ids;
using testing::relative_error;

TEST(TrainModel, OfficialNamesShapesAndOrder) {
  ModelConfig config;
  config.n_layer = 2;
  config.n_embd = 8;
  config.dim_att = 16;
  config.dim_ffn = 24;
  config.vocab_size = 11;
  const Rwkv4 model(config);
  std::vector<std::pair<std::string, Shape>> expected = {{"emb.weight", {11, 8}}};
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = "blocks." + std::to_string(layer) + ".";
    for (const char* ln : {"ln1", "ln2"}) {
      expected.push_back({p + ln + ".weight", {8}});
      expected.push_back({p + ln + ".bias", {8}});
    }
    if (layer == 0) {
      expected.push_back({p + "ln0.weight", {8}});
      expected.push_back({p + "ln0.bias", {8}});
    }
    expected.insert(expected.end(), {{p + "att.time_decay", {16}},
                                     {p + "att.time_first", {16}},
                                     {p + "att.time_mix_k", {1, 1, 8}},
                                     {p + "att.time_mix_v", {1, 1, 8}},
                                     {p + "att.time_mix_r", {1, 1, 8}},
                                     {p + "att.key.weight", {16, 8}},
                                     {p + "att.value.weight", {16, 8}},
                                     {p + "att.receptance.weight", {16, 8}},
                                     {p + "att.output.weight", {8, 16}},
                                     {p + "ffn.time_mix_k", {1, 1, 8}},
                                     {p + "ffn.time_mix_r", {1, 1, 8}},
                                     {p + "ffn.key.weight", {24, 8}},
                                     {p + "ffn.receptance.weight", {8, 8}},
                                     {p + "ffn.value.weight", {8, 24}}});
  }
  expected.insert(expected.end(), {{"ln_out.weight", {8}}, {"ln_out.bias", {8}}, {"head.weight", {11, 8}}});
  const auto named = model.named_parameters();
  ASSERT_EQ(named.size(), expected.size());
  int64_t count = 0;
  for (size_t i = 0; i < named.size(); ++i) {
    EXPECT_EQ(named[i].first, expected[i].first) << "position " << i;
    EXPECT_EQ(named[i].second.shape(), expected[i].second) << named[i].first;
    count += named[i].second.data().numel();
  }
  EXPECT_EQ(count, config.parameter_count());
}

TEST(TrainModel, ParameterCountsOfThePileModels) {
  auto count = [](int64_t layers, int64_t embd) {
    ModelConfig c;
    c.n_layer = layers;
    c.n_embd = embd;
    c.vocab_size = 50277;
    return c.parameter_count();
  };
  EXPECT_EQ(count(12, 768), 169342464);
  EXPECT_EQ(count(24, 1024), 430397440);
  EXPECT_EQ(count(24, 2048), 1515106304);
  EXPECT_EQ(count(32, 2560), 2984627200);
  EXPECT_EQ(count(32, 4096), 7392649216);
  EXPECT_EQ(count(40, 5120), 14148597760);
}

TEST(TrainModel, BadShapesAreClearErrors) {
  ModelConfig config = testing::tiny_config();
  config.n_layer = 1;
  EXPECT_THROW(Rwkv4{config}, Error);
  config = testing::tiny_config();
  config.vocab_size = 0;
  EXPECT_THROW(Rwkv4{config}, Error);
  const Rwkv4 model(testing::tiny_config());
  EXPECT_THROW(model.forward(Tensor::from_vector<int64_t>({1, 2, 97}, {1, 3})), Error);  // id >= vocab
  EXPECT_THROW(model.forward(Tensor::from_vector<int64_t>({1, 2, 3}, {3})), Error);      // not [B, T]
}

TEST(TrainModel, OfficialInitialisation) {
  ModelConfig config;
  config.n_layer = 3;
  config.n_embd = 32;
  config.vocab_size = 100;
  Rwkv4 model(config);
  initialize_rwkv4(model, 6e-4, 42);
  auto values = [&](const std::string& name) { return model.named(name).data().to_vector<double>(); };
  // time_decay: -5 at h = 0 to +3 at h = A-1; time_first: ln 0.3 + {0, +0.5, -0.5}.
  for (int layer = 0; layer < 3; ++layer) {
    const auto decay = values("blocks." + std::to_string(layer) + ".att.time_decay");
    EXPECT_NEAR(decay.front(), -5.0, 1e-6);
    EXPECT_NEAR(decay.back(), 3.0, 1e-6);
    const double exponent = 0.7 + 1.3 * layer / 2.0;
    EXPECT_NEAR(decay[10], -5.0 + 8.0 * std::pow(10.0 / 31.0, exponent), 1e-6);
  }
  const auto first = values("blocks.1.att.time_first");
  EXPECT_NEAR(first[0], std::log(0.3), 1e-6);
  EXPECT_NEAR(first[1], std::log(0.3) + 0.5, 1e-6);
  EXPECT_NEAR(first[2], std::log(0.3) - 0.5, 1e-6);
  // time_mix at layer 2 of 3: ratio_1_to_almost0 = 1/3, ratio_0_to_1 = 1.
  const auto mix_k = values("blocks.2.att.time_mix_k"), mix_v = values("blocks.2.att.time_mix_v");
  const auto mix_r = values("blocks.2.att.time_mix_r"), ffn_r = values("blocks.2.ffn.time_mix_r");
  EXPECT_EQ(mix_k[0], 0.0);
  EXPECT_NEAR(mix_k[16], std::pow(0.5, 1.0 / 3.0), 1e-6);
  EXPECT_NEAR(mix_v[16], std::pow(0.5, 1.0 / 3.0) + 0.3, 1e-6);
  EXPECT_NEAR(mix_r[16], std::pow(0.5, 0.5 / 3.0), 1e-6);
  EXPECT_NEAR(ffn_r[16], std::pow(0.5, 1.0 / 3.0), 1e-6);
  // Zero matrices, orthogonal ones with their gains, the embedding bound, LayerNorms.
  for (const char* zero : {"blocks.0.att.key.weight", "blocks.1.att.receptance.weight", "blocks.2.att.output.weight",
                           "blocks.0.ffn.value.weight", "blocks.1.ffn.receptance.weight"}) {
    for (double v : values(zero)) ASSERT_EQ(v, 0.0) << zero;
  }
  auto column_norm = [&](const std::string& name) {  // of the first column (rows >= cols: orthonormal columns)
    const Tensor t = model.named(name).data();
    const auto v = t.to_vector<double>();
    double total = 0;
    for (int64_t r = 0; r < t.size(0); ++r) total += v[static_cast<size_t>(r * t.size(1))] * v[static_cast<size_t>(r * t.size(1))];
    return std::sqrt(total);
  };
  EXPECT_NEAR(column_norm("blocks.0.att.value.weight"), 1.0, 1e-5);
  EXPECT_NEAR(column_norm("blocks.0.ffn.key.weight"), 2.0, 1e-5);  // gain sqrt(F/C) = 2
  EXPECT_NEAR(column_norm("head.weight"), 0.5 * std::sqrt(100.0 / 32.0), 1e-5);
  for (double v : values("emb.weight")) ASSERT_LE(std::abs(v), 6e-4);
  for (double v : values("blocks.0.ln0.weight")) ASSERT_EQ(v, 1.0);
  for (double v : values("ln_out.bias")) ASSERT_EQ(v, 0.0);
  // Deterministic from the seed.
  Rwkv4 again(config);
  initialize_rwkv4(again, 6e-4, 42);
  EXPECT_EQ(again.named("head.weight").data().to_vector<float>(), model.named("head.weight").data().to_vector<float>());
  // At init every residual branch outputs exactly zero (spec §3.2): logits = head(ln_out(ln0(emb))).
  const Tensor idx = random_ids({2, 5}, 100, 1);
  const ag::Variable logits = model.forward(idx);
  const auto& emb = model.named("emb.weight");
  ag::Variable x = ag::embedding(emb, idx);
  x = ag::layernorm(x, model.named("blocks.0.ln0.weight"), model.named("blocks.0.ln0.bias"));
  x = ag::layernorm(x, model.named("ln_out.weight"), model.named("ln_out.bias"));
  const ag::Variable expected = ag::matmul(ag::reshape(x, {10, 32}), model.named("head.weight"), false, true);
  EXPECT_LT(relative_error(logits.data().reshape({10, 100}), expected.data()), 1e-6);
}

TEST(TrainModel, ParallelRecurrentAndChunkedModesAgree) {
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 7);
  const int64_t batch = 3, time = 16;
  const Tensor idx = random_ids({batch, time}, 97, 2);
  ag::NoGradGuard no_grad;
  const Tensor parallel = model.forward(idx).data();
  // Token by token (RNN mode, spec §8.3).
  ModelState rnn = zero_state(model.config(), batch);
  for (int64_t t = 0; t < time; ++t) {
    const Tensor step = model.forward(idx.slice(1, t, t + 1), &rnn).data();
    EXPECT_LT(relative_error(step, parallel.slice(1, t, t + 1)), 1e-5) << "t = " << t;
  }
  // Chunks of 5, 7 and 4 tokens with the state passed along.
  ModelState chunked = zero_state(model.config(), batch);
  int64_t start = 0;
  for (int64_t length : {5, 7, 4}) {
    const Tensor part = model.forward(idx.slice(1, start, start + length), &chunked).data();
    EXPECT_LT(relative_error(part, parallel.slice(1, start, start + length)), 1e-5) << "chunk at " << start;
    start += length;
  }
  // The packed §8.2 layout round-trips, and its state equals the token-by-token one.
  const Tensor packed = pack_state(chunked);
  EXPECT_EQ(packed.shape(), (Shape{batch, 10, 64}));
  EXPECT_LT(relative_error(pack_state(rnn), packed), 1e-5);
  EXPECT_EQ(pack_state(unpack_state(packed, 2)).to_vector<float>(), packed.to_vector<float>());
}

TEST(TrainModel, GradientCheckpointingGivesTheSameGradients) {
  Rwkv4 plain(testing::tiny_config()), checkpointed(testing::tiny_config());
  testing::randomize_parameters(plain, 8);
  testing::randomize_parameters(checkpointed, 8);
  checkpointed.set_gradient_checkpointing(true);
  const Tensor idx = random_ids({2, 12}, 97, 3), targets = random_ids({2, 12}, 97, 4);
  language_model_loss(plain.forward(idx), targets).backward();
  language_model_loss(checkpointed.forward(idx), targets).backward();
  const auto a = plain.named_parameters(), b = checkpointed.named_parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT(relative_error(b[i].second.grad(), a[i].second.grad()), 1e-6) << a[i].first;
  }
}

}  // namespace
}  // namespace rwkv
