// Config parsing and its errors, the learning-rate schedule against spec §4.4, parameter groups and clipping.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "tests/test_util.h"
#include "train/config/config.h"
#include "train/optim/optimizer.h"
#include "train/optim/schedule.h"

namespace rwkv {
namespace {

using testing::error_of;

class TrainConfigFile : public ::testing::Test {
protected:
  std::string write(const std::string& text) {
    path_ = (std::filesystem::temp_directory_path() / ("rwkv_config_" + std::to_string(::getpid()) + ".ini")).string();
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_;
};

TEST_F(TrainConfigFile, FileValuesAndCommandLineOverrides) {
  const std::string path = write("# a comment\nn_layer = 6\nlr_init = 4e-4\nproj_dir = runs/a\n");
  const ParsedConfig parsed = parse_train_config({"--config", path, "--lr_init", "1e-4", "--micro_bsz", "3"});
  EXPECT_EQ(parsed.config.n_layer, 6);
  EXPECT_EQ(parsed.config.lr_init, 1e-4);  // the command line beats the file
  EXPECT_EQ(parsed.config.micro_bsz, 3);
  EXPECT_EQ(parsed.config.proj_dir, "runs/a");
  EXPECT_EQ(parsed.config.n_embd, 768);  // default
  // The resolved text reads back to the same config.
  const TrainConfig again = config_from_ini(parsed.config.to_ini(), "resolved");
  EXPECT_EQ(again.to_ini(), parsed.config.to_ini());
  EXPECT_NE(parsed.config.to_ini().find("lr_init = 1e-04\n"), std::string::npos) << parsed.config.to_ini();
}

TEST_F(TrainConfigFile, UnknownKeysNameFileLineAndSuggest) {
  const std::string path = write("n_layer = 6\nlr_intt = 4e-4\n");
  const std::string message = error_of([&] { parse_train_config({"--config", path}); });
  EXPECT_NE(message.find(path + ":2"), std::string::npos) << message;
  EXPECT_NE(message.find("'lr_intt'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'lr_init'"), std::string::npos) << message;
  const std::string cli = error_of([] { parse_train_config({"--micro_bs", "4"}); });
  EXPECT_NE(cli.find("did you mean 'micro_bsz'"), std::string::npos) << cli;
  EXPECT_NE(error_of([] { parse_train_config({"--zzzzzzzzzzzz", "4"}); }).find("rwkv train --help"), std::string::npos);
}

TEST_F(TrainConfigFile, BadValuesNameTheKeyAndTheForm) {
  const std::string type = error_of([] { parse_train_config({"--ctx_len", "long"}); });
  EXPECT_NE(type.find("ctx_len"), std::string::npos) << type;
  EXPECT_NE(type.find("an integer"), std::string::npos) << type;
  const std::string negative = error_of([] { parse_train_config({"--micro_bsz", "-2"}); });
  EXPECT_NE(negative.find("micro_bsz must be a positive integer"), std::string::npos) << negative;
  EXPECT_NE(error_of([] { parse_train_config({"--precision", "fp8"}); }).find("precision"), std::string::npos);
  EXPECT_NE(error_of([] { parse_train_config({"--config", "/nonexistent/c.ini"}); }).find("/nonexistent/c.ini"),
            std::string::npos);
  EXPECT_EQ(nearest_option("n_emdb", {"n_embd", "n_layer"}), "n_embd");
  EXPECT_EQ(nearest_option("completely_different", {"n_embd", "n_layer"}), "");
}

TEST(TrainSchedule, ExponentialDecayWarmupAndAbsoluteSteps) {
  TrainConfig c;
  c.lr_init = 6e-4;
  c.lr_final = 1e-5;
  c.epoch_steps = 100;
  c.epoch_count = 10;
  c.warmup_steps = 20;
  const ScheduleShape shape = schedule_shape(c, 1);
  auto expected = [&](int64_t global_step, int64_t epoch_begin) {
    const double real_step = static_cast<double>(global_step + epoch_begin * 100);
    const double progress = std::clamp((real_step - 20 + 1) / (1000.0 - 20), 0.0, 1.0);
    double lr = 6e-4 * std::exp(std::log(1e-5 / 6e-4) * progress);
    if (global_step < 20) lr *= 0.2 + 0.8 * static_cast<double>(global_step) / 20;
    return lr;
  };
  for (int64_t step : {0, 1, 10, 19, 20, 21, 500, 979, 980, 999, 5000}) {
    EXPECT_NEAR(learning_rate(c, shape, step), expected(step, 0), 1e-15) << "step " << step;
  }
  EXPECT_NEAR(learning_rate(c, shape, 0), 0.2 * 6e-4, 1e-15);  // progress is clamped at 0 during warmup
  EXPECT_NEAR(learning_rate(c, shape, 5000), 1e-5, 1e-15);  // stays at lr_final
  c.epoch_begin = 3;  // decay by the absolute step
  EXPECT_NEAR(learning_rate(c, shape, 50), expected(50, 3), 1e-15);
  EXPECT_EQ(schedule_end_step(c, shape), 700);
  // Linear when lr_final is 0; constant when lr_final == lr_init.
  c.epoch_begin = 0;
  c.lr_final = 0;
  EXPECT_NEAR(learning_rate(c, shape, 500), 6e-4 * (1 - (500 - 20 + 1) / 980.0), 1e-15);
  c.lr_final = 6e-4;
  c.warmup_steps = -1;
  EXPECT_EQ(learning_rate(c, shape, 500), 6e-4);
}

TEST(TrainSchedule, CosineByExitTokensAndMagicPrimeShape) {
  TrainConfig c;
  c.lr_init = 1e-3;
  c.lr_final = 1e-4;
  c.ctx_len = 512;
  c.micro_bsz = 8;
  c.warmup_steps = 0;
  c.magic_prime = 2 * 40320 + 5;  // forces epoch_steps = 40320 / 8 and epoch_count = 2
  c.my_exit_tokens = 40320 * 512;
  const ScheduleShape shape = schedule_shape(c, 1);
  EXPECT_EQ(shape.epoch_steps, 5040);
  EXPECT_EQ(shape.epoch_count, 2);
  EXPECT_EQ(schedule_end_step(c, shape), 5040);
  for (int64_t step : {0, 1000, 2520, 5040}) {
    const double pc = std::clamp(static_cast<double>(step) * 512 * 8 / (40320.0 * 512), 0.0, 1.0);
    const double f = 0.1, mult = (0.5 + f / 2) + (0.5 - f / 2) * std::cos(std::numbers::pi * pc);
    EXPECT_NEAR(learning_rate(c, shape, step), 1e-3 * mult, 1e-15) << step;
  }
  c.micro_bsz = 7;  // 40320 / 7 is whole; 40320 / 11 is not
  EXPECT_NO_THROW(schedule_shape(c, 1));
  c.micro_bsz = 11;
  EXPECT_NE(error_of([&] { schedule_shape(c, 1); }).find("must divide 40320"), std::string::npos);
}

TEST(TrainOptimizer, ParameterGroupsFollowSpecSection42) {
  TrainConfig c;
  EXPECT_EQ(Optimizer::lr_multiplier("blocks.0.att.time_decay", c), 2.0);
  EXPECT_EQ(Optimizer::lr_multiplier("blocks.0.att.time_first", c), 3.0);
  EXPECT_EQ(Optimizer::lr_multiplier("blocks.0.att.time_mix_k", c), 1.0);
  EXPECT_EQ(Optimizer::lr_multiplier("blocks.0.ffn.key.weight", c), 1.0);
  c.my_pile_stage = 2;
  for (const char* name : {"blocks.1.att.time_decay", "blocks.1.att.time_first", "blocks.1.ffn.time_mix_r"}) {
    EXPECT_EQ(Optimizer::lr_multiplier(name, c), 5.0) << name;
  }
  c.layerwise_lr = 0;
  EXPECT_EQ(Optimizer::lr_multiplier("blocks.1.att.time_decay", c), 1.0);
}

TEST(TrainOptimizer, ClippingWeightDecayAndSkippedSteps) {
  TrainConfig c;
  c.optimizer = "sgd";
  c.grad_clip = 1.0;
  c.weight_decay = 0.1;
  ag::Variable matrix(Tensor::full({2, 2}, 1.0), true), mix(Tensor::full({1, 1, 2}, 1.0), true);
  Optimizer optimizer({{"a.key.weight", matrix}, {"a.time_mix_k", mix}}, c);
  EXPECT_EQ(optimizer.slots()[0].weight_decay, 0.1);  // a matrix
  EXPECT_EQ(optimizer.slots()[1].weight_decay, 0.0);  // [1, 1, C] squeezes to a vector
  // Gradient norm sqrt(6 * 4) = 4.899: SGD moves by lr * g * clip / (norm + 1e-6).
  matrix.mutable_grad() = Tensor::full({2, 2}, 2.0);
  mix.mutable_grad() = Tensor::full({1, 1, 2}, 2.0);
  const StepReport report = optimizer.step(0.5);
  EXPECT_NEAR(report.grad_norm, std::sqrt(24.0), 1e-9);
  const double moved = 0.5 * 2.0 / (std::sqrt(24.0) + 1e-6);
  EXPECT_NEAR(matrix.data().to_vector<double>()[0], 1.0 - moved, 1e-7);
  // Non-finite gradients: no update at all.
  matrix.mutable_grad() = Tensor::full({2, 2}, std::nan(""));
  const std::vector<float> before = matrix.data().to_vector<float>();
  EXPECT_FALSE(optimizer.step(0.5).applied);
  EXPECT_EQ(matrix.data().to_vector<float>(), before);
}

}  // namespace
}  // namespace rwkv
