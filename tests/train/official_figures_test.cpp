// The reference figures `rwkv bench train --official` compares with, and how a row's goal is judged.
#include <gtest/gtest.h>

#include "train/model/model_config.h"
#include "train/official_figures.h"

namespace rwkv {
namespace {

TrainBenchmarkReport report(double tokens_per_second, double peak_gib, int64_t non_embedding_parameters = 85000000) {
  TrainBenchmarkReport r;
  r.tokens_per_second = tokens_per_second;
  r.peak_memory_bytes = static_cast<int64_t>(peak_gib * static_cast<double>(int64_t{1} << 30));
  r.non_embedding_parameters = non_embedding_parameters;
  return r;
}

const OfficialWorkload& workload(const std::string& name) {
  for (const OfficialWorkload& w : official_workloads()) {
    if (w.name == name) return w;
  }
  throw std::runtime_error("no workload " + name);
}

TEST(OfficialFigures, AreGpuMdsMeasurements) {
  const auto& all = official_workloads();
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(*workload("169M B16").tokens_per_second, 156000);
  EXPECT_EQ(*workload("169M B16").peak_gib, 22.6);
  EXPECT_EQ(*workload("169M B32").tokens_per_second, 172000);
  EXPECT_EQ(*workload("430M B16").tokens_per_second, 81000);
  EXPECT_EQ(*workload("1.5B B8").tokens_per_second, 33400);
  EXPECT_EQ(workload("1.5B B8").micro_bsz, 8);
  EXPECT_FALSE(workload("169M B16 grad_cp").tokens_per_second.has_value());  // RWKV-LM was not measured so
  // GPU.md's model TFLOP/s is 6 · non-embedding parameters · tokens/s: 430M (L24-D1024) at 81K tok/s is 184,
  // 1.5B (L24-D2048) at 33.4K is 283.
  const auto non_embedding = [](int64_t n_layer, int64_t n_embd) {
    ModelConfig config;
    config.n_layer = n_layer;
    config.n_embd = n_embd;
    config.vocab_size = kOfficialVocab;
    return config.parameter_count() - kOfficialVocab * n_embd;
  };
  const int64_t non_embedding_430m = non_embedding(24, 1024);
  EXPECT_NEAR(model_tflops(report(33400, 1, non_embedding(24, 2048))), 283, 1.5);
  EXPECT_NEAR(model_tflops(report(81000, 1, non_embedding_430m)), 184, 1.5);
}

TEST(OfficialFigures, GoalsAreJudgedOnTokensPeakAndUtilisation) {
  const OfficialWorkload& small = workload("169M B16");  // >= 390K tok/s and peak <= 22.6 GiB
  EXPECT_EQ(goal_met(small, report(400000, 20), nullptr), true);
  EXPECT_EQ(goal_met(small, report(380000, 20), nullptr), false);
  EXPECT_EQ(goal_met(small, report(400000, 23), nullptr), false);
  const OfficialWorkload& large = workload("1.5B B8");  // >= 55% of 798 model TFLOP/s
  const int64_t parameters = 1400000000;
  EXPECT_EQ(goal_met(large, report(0.56 * 798e12 / (6.0 * parameters), 60, parameters), nullptr), true);
  EXPECT_EQ(goal_met(large, report(0.50 * 798e12 / (6.0 * parameters), 60, parameters), nullptr), false);
  EXPECT_EQ(goal_met(workload("169M B32"), report(1, 100), nullptr), std::nullopt);  // no goal
}

TEST(OfficialFigures, CheckpointingIsJudgedAgainstThePlainRow) {
  const OfficialWorkload& checkpointed = workload("169M B16 grad_cp");  // <= 1/2 the peak, < 35% slower
  const TrainBenchmarkReport plain = report(400000, 20);
  EXPECT_EQ(goal_met(checkpointed, report(300000, 9), &plain), true);
  EXPECT_EQ(goal_met(checkpointed, report(300000, 11), &plain), false);  // not half
  EXPECT_EQ(goal_met(checkpointed, report(250000, 9), &plain), false);   // 37.5% slower
  EXPECT_EQ(goal_met(checkpointed, report(300000, 9), nullptr), std::nullopt);  // the plain row failed
}

}  // namespace
}  // namespace rwkv
