// The trainer on a GPU, through run_training as `rwkv train` runs it: a tiny fp32 run on cuda:0 follows the CPU
// run's losses, and two identical GPU runs (and a resumed one) are bit-identical; ZeRO-1 over a one-rank NCCL
// communicator (its buffers on the GPU) equals the unsharded optimizer. Skips without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "core/cuda_runtime.h"
#include "train/io/checkpoint.h"
#include "train/trainer.h"
#include "tests/train/train_test_util.h"
#ifdef RWKV_HAVE_NCCL
#include "train/dist/local_launcher.h"
#include "train/dist/nccl_communicator.h"
#endif

namespace rwkv {
namespace {

class CudaTrainer : public testing::TempDirTest {
protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    TempDirTest::SetUp();
    testing::write_fox_corpus(dir_ / "corpus.txt");
  }
  TrainConfig config(const std::string& run, const std::string& device) const {
    TrainConfig c = testing::tiny_training_config(dir_ / "corpus.txt", dir_ / run);
    c.device = device;
    c.epoch_count = 2;
    c.warmup_steps = 2;
    return c;  // 8 steps, fp32 (full-precision GEMMs, no tf32)
  }
  static std::vector<double> losses(const TrainOutcome& outcome) {
    std::vector<double> values;
    for (const StepRecord& r : outcome.records) values.push_back(r.loss);
    return values;
  }
  TrainerHooks quiet_{nullptr, true};
};

TEST_F(CudaTrainer, FollowsTheCpuRunAndIsDeterministic) {
  const TrainOutcome cpu = run_training(config("cpu", "cpu"), quiet_);
  const TrainOutcome gpu = run_training(config("gpu", "cuda:0"), quiet_);
  ASSERT_EQ(gpu.records.size(), cpu.records.size());
  double worst = 0;
  for (size_t i = 0; i < cpu.records.size(); ++i) {
    ASSERT_TRUE(std::isfinite(gpu.records[i].loss)) << "step " << i + 1;
    worst = std::max(worst, std::abs(gpu.records[i].loss - cpu.records[i].loss) / std::abs(cpu.records[i].loss));
  }
  std::cout << "[ error    ] GPU vs CPU loss, worst relative over " << cpu.records.size() << " steps: " << worst
            << "\n";
  EXPECT_LE(worst, 1e-4);  // fp32 on both; only summation orders differ

  // The same run again, and the same run stopped at step 3 and resumed: bit-identical losses on the GPU.
  const TrainOutcome again = run_training(config("again", "cuda:0"), quiet_);
  EXPECT_EQ(losses(again), losses(gpu)) << "two identical GPU runs differ: a kernel is not deterministic";
  TrainConfig first = config("split", "cuda:0");
  first.max_steps = 3;
  const TrainOutcome part1 = run_training(first, quiet_);
  TrainConfig rest = config("split", "cuda:0");
  rest.resume = "auto";
  const TrainOutcome part2 = run_training(rest, quiet_);
  std::vector<double> split = losses(part1);
  for (double loss : losses(part2)) split.push_back(loss);
  EXPECT_EQ(split, losses(gpu)) << "3 steps + resume differ from a straight GPU run";
  EXPECT_EQ(read_train_state(part2.last_checkpoint).global_step, gpu.global_step);
}

#ifdef RWKV_HAVE_NCCL

// ZeRO-1 keeps its flat gradient and parameter buffers on the GPU under NCCL (reduce-scatter and all-gather of
// device memory, multi-tensor Adam on the shard); with one rank it must equal the unsharded optimizer, moments
// included, through a save and a resume.
TEST_F(CudaTrainer, ZeroOneOverNcclEqualsTheUnshardedOptimizer) {
  const auto nccl = dist::make_nccl_over_tcp({0, 1, 0, 1}, "127.0.0.1", dist::pick_free_port(), 0,
                                             std::chrono::seconds(60));
  TrainerHooks hooks = quiet_;
  hooks.communicator = nccl.get();
  testing::expect_zero_one_equals_unsharded(config("plain", "cuda:0"), config("zero", "cuda:0"), 3, hooks);
}
#endif

}  // namespace
}  // namespace rwkv
