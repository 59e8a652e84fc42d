#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "train/train_benchmark.h"

namespace rwkv {
namespace {

TEST(TrainBench, TwoStepsOnTheCpuReportPositiveFiniteNumbers) {
  TrainConfig config;
  config.device = "cpu";
  config.n_layer = 2;
  config.n_embd = 32;
  config.ctx_len = 16;
  config.micro_bsz = 2;
  config.vocab_size = 64;
  const TrainBenchmarkReport report = run_train_benchmark(config, {.steps = 2, .warmup = 1});

  EXPECT_EQ(report.device, "cpu");
  EXPECT_EQ(report.tokens_per_step, 32);
  EXPECT_EQ(report.parameters, config.model().parameter_count());
  EXPECT_EQ(report.non_embedding_parameters, report.parameters - 64 * 32);
  for (const double value : {report.tokens_per_second, report.step_ms, report.forward_ms, report.backward_ms,
                             report.optimizer_ms}) {
    EXPECT_TRUE(std::isfinite(value) && value > 0) << value;
  }
  // Two steps: each median is a mean, so the phases add up to the step.
  EXPECT_NEAR(report.step_ms, report.forward_ms + report.backward_ms + report.optimizer_ms, 1e-9);
  EXPECT_NEAR(report.tokens_per_second, 32 / (report.step_ms / 1000.0), 1e-6 * report.tokens_per_second);
  EXPECT_FALSE(report.mfu.has_value());  // no MFU on the CPU
  EXPECT_GT(report.peak_memory_bytes, 0);
  EXPECT_TRUE(std::isfinite(report.last_loss));
  EXPECT_NEAR(report.last_loss, std::log(64.0), 1.0);  // random tokens: about ln(vocab)
  EXPECT_FALSE(report.model.empty());
  EXPECT_FALSE(report.gemm_precision.empty());
}

TEST(TrainBench, ByteDataImpliesAVocabularyOf256AndOtherDataNeedsOne) {
  TrainConfig config;
  config.device = "cpu";
  config.n_layer = 2;
  config.n_embd = 16;
  config.ctx_len = 8;
  config.micro_bsz = 1;
  config.data_type = "bytes";
  ModelConfig bytes_model = config.model();
  bytes_model.vocab_size = 256;
  EXPECT_EQ(run_train_benchmark(config, {.steps = 1, .warmup = 0}).parameters, bytes_model.parameter_count());
  config.data_type = "binidx";
  EXPECT_THROW(run_train_benchmark(config, {.steps = 1, .warmup = 0}), Error);
}

}  // namespace
}  // namespace rwkv
