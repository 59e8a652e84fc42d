// The trainer end to end on the CPU: bit-exact resume, fine-tuning, NaN handling, atomic checkpoints, rank roles.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/dataset.h"
#include "train/io/checkpoint.h"
#include "train/eval/evaluate.h"
#include "train/io/hdf5.h"
#include "train/model/model_init.h"
#include "train/io/model_io.h"
#include "train/trainer.h"
#include "train/eval/validation.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

class TrainTrainer : public testing::TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    testing::write_fox_corpus(dir_ / "corpus.txt");
  }

  TrainConfig small_config(const std::string& run) const {
    TrainConfig c = testing::tiny_training_config(dir_ / "corpus.txt", dir_ / run);
    c.epoch_count = 3;
    c.epoch_save = 1;
    c.warmup_steps = 3;
    return c;
  }

  static std::vector<double> losses(const TrainOutcome& outcome) {
    std::vector<double> values;
    for (const StepRecord& r : outcome.records) values.push_back(r.loss);
    return values;
  }

  static std::vector<float> all_values(const std::string& checkpoint, const char* group) {
    return testing::checkpoint_values(checkpoint, group);
  }

  TrainerHooks quiet_{nullptr, true};
};

TEST_F(TrainTrainer, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
  // 12 steps straight through.
  const TrainOutcome straight = run_training(small_config("straight"), quiet_);
  ASSERT_EQ(straight.global_step, 12);
  // 5 steps, stop, then resume to the end.
  TrainConfig first = small_config("split");
  first.max_steps = 5;
  const TrainOutcome part1 = run_training(first, quiet_);
  ASSERT_EQ(part1.global_step, 5);
  TrainConfig second = small_config("split");
  second.resume = "auto";
  const TrainOutcome part2 = run_training(second, quiet_);
  ASSERT_EQ(part2.global_step, 12);
  // The sequence of losses, the parameters and the Adam moments are identical to the bit.
  std::vector<double> joined = losses(part1);
  for (double loss : losses(part2)) joined.push_back(loss);
  EXPECT_EQ(joined, losses(straight));
  const std::string a = (dir_ / "straight" / "rwkv-final.h5").string(), b = (dir_ / "split" / "rwkv-final.h5").string();
  EXPECT_EQ(all_values(a, "model"), all_values(b, "model"));
  EXPECT_EQ(all_values(a, "optimizer/exp_avg"), all_values(b, "optimizer/exp_avg"));
  EXPECT_EQ(all_values(a, "optimizer/exp_avg_sq"), all_values(b, "optimizer/exp_avg_sq"));
  EXPECT_EQ(read_train_state(a).global_step, read_train_state(b).global_step);
  EXPECT_EQ(read_train_state(a).tokens_seen, read_train_state(b).tokens_seen);
  // And training learned something.
  EXPECT_LT(losses(straight).back(), losses(straight).front() - 0.5);
  // A finished run has nothing to do.
  EXPECT_EQ(run_training(second, quiet_).records.size(), 0u);
}

TEST_F(TrainTrainer, ResumeSkipsACorruptNewestCheckpoint) {
  TrainConfig first = small_config("corrupt");
  first.max_steps = 8;  // saves rwkv-0.h5 (step 4) and rwkv-step-8.h5
  run_training(first, quiet_);
  const fs::path newest = dir_ / "corrupt" / "rwkv-step-8.h5";
  ASSERT_TRUE(fs::exists(newest));
  fs::resize_file(newest, fs::file_size(newest) / 2);  // torn by a disk failure
  TrainConfig second = small_config("corrupt");
  second.resume = "auto";
  second.max_steps = 6;
  const TrainOutcome outcome = run_training(second, quiet_);
  EXPECT_EQ(outcome.records.front().step, 5);  // continued from step 4, the previous valid checkpoint
}

TEST_F(TrainTrainer, FineTuneFromWeightsWithAnotherContextLength) {
  const TrainOutcome base = run_training(small_config("base"), quiet_);
  TrainConfig tune = small_config("tune");
  tune.load_model = base.last_checkpoint;
  tune.ctx_len = 48;
  tune.max_steps = 2;
  const TrainOutcome tuned = run_training(tune, quiet_);
  EXPECT_EQ(tuned.global_step, 2);
  // Fresh optimizer with warmup: the first lr is 0.2 · lr_init.
  EXPECT_NEAR(tuned.records.front().lr, 0.2 * 2e-3, 1e-12);
  // A model of another shape is refused with the tensor's name.
  TrainConfig wrong = small_config("wrong");
  wrong.load_model = base.last_checkpoint;
  wrong.n_embd = 64;
  try {
    run_training(wrong, quiet_);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("n_embd"), std::string::npos) << e.what();
  }
}

TEST_F(TrainTrainer, NonFiniteLossSkipsStepsThenStopsWithoutSaving) {
  // Weights with a NaN: every step's loss is NaN.
  {
    ModelConfig mc = small_config("x").model();
    mc.vocab_size = 256;
    Rwkv4 model(mc);
    initialize_rwkv4(model, 1e-3, 1);
    model.named("blocks.0.ln1.weight").data().data<float>()[3] = std::nanf("");
    save_model(model, (dir_ / "nan.h5").string());
  }
  TrainConfig config = small_config("nan");
  config.load_model = (dir_ / "nan.h5").string();
  config.max_bad_steps = 3;
  try {
    run_training(config, quiet_);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 consecutive steps"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(list_checkpoints((dir_ / "nan").string(), nullptr).empty());  // nothing bad was saved
}

TEST_F(TrainTrainer, AKilledWriterLeavesThePreviousCheckpointValid) {
  const TrainOutcome outcome = run_training(small_config("atomic"), quiet_);
  const std::string path = outcome.last_checkpoint;
  const std::vector<float> before = all_values(path, "model");
  ModelConfig mc = small_config("x").model();
  mc.vocab_size = 256;
  // Children start overwriting `path` with another model and are killed at different moments.
  for (int delay_us : {0, 200, 1000, 3000, 10000}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      Rwkv4 other(mc);
      initialize_rwkv4(other, 1e-3, 99);
      TrainConfig config;
      Optimizer optimizer(other.named_parameters(), config);
      for (;;) save_checkpoint(path, other, optimizer, TrainState{});
    }
    ::usleep(static_cast<useconds_t>(delay_us));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    // Whatever moment it died at, the file under the final name is a complete checkpoint: the old one, or
    // (when a rename completed) the child's.
    EXPECT_NO_THROW(read_train_state(path)) << "killed after " << delay_us << " us";
    const std::vector<float> now = all_values(path, "model");
    EXPECT_EQ(now.size(), before.size());
  }
}

TEST_F(TrainTrainer, GradientAccumulationMatchesTheLargerBatch) {
  // Two micro-batches of 2 with accumulation follow the same samples as one batch of 4 and give the same update
  // (plain SGD, so the update is linear in the gradient and rounding is not amplified as Adam's is).
  TrainConfig big = small_config("big");
  big.max_steps = 3;
  big.grad_clip = 0;
  big.optimizer = "sgd";
  TrainConfig accumulated = small_config("accumulated");
  accumulated.max_steps = 3;
  accumulated.grad_clip = 0;
  accumulated.micro_bsz = 2;
  accumulated.accumulate_grad_batches = 2;
  accumulated.optimizer = "sgd";
  const TrainOutcome a = run_training(big, quiet_), b = run_training(accumulated, quiet_);
  // Same samples: a different batch would change the loss by ~0.1, fp32 summation order by ~1e-5.
  for (size_t i = 0; i < a.records.size(); ++i) EXPECT_NEAR(a.records[i].loss, b.records[i].loss, 1e-4);
  const auto va = all_values(a.last_checkpoint, "model"), vb = all_values(b.last_checkpoint, "model");
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(va[i] - vb[i])));
  EXPECT_LT(worst, 1e-5);
}

}  // namespace
}  // namespace rwkv

namespace rwkv {
namespace {

// One rank of two whose peer contributes exactly what this rank does (so averages equal this rank's values).
class MirrorPeerCommunicator final : public dist::Communicator {
public:
  explicit MirrorPeerCommunicator(int rank, bool device_memory = false) : rank_(rank), device_memory_(device_memory) {}
  bool accepts_device_memory() const override { return device_memory_; }  // true: a torchrun-style NCCL rank
  int rank() const override { return rank_; }
  int world_size() const override { return 2; }
  int local_rank() const override { return rank_; }
  int local_size() const override { return 2; }
  std::string name() const override { return "mirror"; }
  void all_reduce_sum(std::span<float> values) override {
    for (float& value : values) value *= 2;
  }
  void all_reduce_sum(std::span<double> values) override {
    for (double& value : values) value *= 2;
  }
  void reduce_scatter_sum(std::span<const float>, std::span<float>) override {}
  void all_gather(std::span<const float>, std::span<float>) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override { ++barriers; }
  void abort(int) override {}
  int barriers = 0;

private:
  int rank_;
  bool device_memory_;
};

TEST_F(TrainTrainer, OnlyRankZeroWritesAndTheCheckpointRecordsTheWorldSize) {
  TrainConfig config = small_config("ranks");
  config.max_steps = 4;  // one mini-epoch: rwkv-0.h5 at step 4
  config.micro_bsz = 2;
  MirrorPeerCommunicator rank1(1);
  TrainerHooks hooks = quiet_;
  hooks.communicator = &rank1;
  const TrainOutcome other = run_training(config, hooks);
  EXPECT_EQ(other.global_step, 4);
  ASSERT_EQ(other.records.size(), 4u);
  for (const StepRecord& record : other.records) EXPECT_TRUE(std::isfinite(record.loss) && !record.skipped);
  EXPECT_GE(rank1.barriers, 2);  // the save waits for every rank, before and after writing
  EXPECT_FALSE(fs::exists(dir_ / "ranks" / "metrics.jsonl"));
  EXPECT_FALSE(fs::exists(other.last_checkpoint));

  MirrorPeerCommunicator rank0(0);
  hooks.communicator = &rank0;
  const TrainOutcome root = run_training(config, hooks);
  ASSERT_TRUE(fs::exists(root.last_checkpoint));
  EXPECT_TRUE(fs::exists(dir_ / "ranks" / "metrics.jsonl"));
  EXPECT_EQ(read_train_state(root.last_checkpoint).world_size, 2);
}

// Under torchrun the NCCL communicator is made on LOCAL_RANK's GPU before the config is read: an explicit
// device = cuda:K on another GPU is refused (before any GPU is touched, so this runs without one).
TEST_F(TrainTrainer, AnExplicitGpuOtherThanLocalRanksIsRefusedUnderTorchrun) {
  TrainConfig config = small_config("torchrun_device");
  config.device = "cuda:0";
  MirrorPeerCommunicator rank1(1, /*device_memory=*/true);
  TrainerHooks hooks = quiet_;
  hooks.communicator = &rank1;
  const std::string message = testing::error_of([&] { run_training(config, hooks); });
  EXPECT_NE(message.find("device = cuda:0, but rank 1 of 2 was launched with LOCAL_RANK 1 and its NCCL "
                         "communicator is on cuda:1"),
            std::string::npos)
      << message;
}

// TrainerHooks::before_step, the seam where a test can stall a rank: once per step, with this rank and the step
// about to be taken, before that step is recorded.
TEST_F(TrainTrainer, BeforeStepHookSeesTheRankAndEachStepBeforeItIsTaken) {
  TrainConfig config = small_config("before_step");
  config.max_steps = 3;
  config.micro_bsz = 2;
  MirrorPeerCommunicator rank1(1);
  TrainerHooks hooks = quiet_;
  hooks.communicator = &rank1;
  std::vector<std::pair<int, int64_t>> calls;
  size_t recorded = 0;
  hooks.on_step = [&](const StepRecord&) { ++recorded; };
  hooks.before_step = [&](int rank, int64_t step) {
    EXPECT_EQ(recorded, calls.size());  // the previous step is recorded, this one not yet
    calls.emplace_back(rank, step);
  };
  run_training(config, hooks);
  EXPECT_EQ(calls, (std::vector<std::pair<int, int64_t>>{{1, 1}, {1, 2}, {1, 3}}));
}

// Each rank validates its share of the windows and one all-reduce combines them; only rank 0 logs the result.
TEST_F(TrainTrainer, ValidationSplitsTheWindowsAcrossRanksAndOnlyRankZeroLogsIt) {
  TrainConfig config = small_config("val_ranks");
  config.max_steps = 4;
  config.micro_bsz = 2;
  config.val_data_file = config.data_file;
  config.val_data_type = "bytes";
  config.val_every = 2;
  config.val_max_windows = 10;
  MirrorPeerCommunicator rank1(1);
  TrainerHooks hooks = quiet_;
  hooks.communicator = &rank1;
  const TrainOutcome other = run_training(config, hooks);
  ASSERT_EQ(other.validations.size(), 2u);  // steps 2 and 4
  for (const ValidationRecord& record : other.validations) EXPECT_TRUE(std::isfinite(record.loss));
  EXPECT_FALSE(fs::exists(dir_ / "val_ranks" / "metrics.jsonl"));

  MirrorPeerCommunicator rank0(0);
  hooks.communicator = &rank0;
  const TrainOutcome root = run_training(config, hooks);
  ASSERT_EQ(root.validations.size(), 2u);
  EXPECT_EQ(root.validations[1].tokens, 10 * config.ctx_len);  // all ranks' windows
  // The mirror peer reports what rank 0 does: the combined loss is the mean over rank 0's share, windows 0-4.
  const data::TokenSource source = data::open_dataset({config.data_file, "bytes", ""});
  const EvalResult share = evaluate(*load_model(root.last_checkpoint),
                                    token_range(source, 0, 5 * static_cast<uint64_t>(config.ctx_len + 1)),
                                    config.ctx_len, config.micro_bsz, Device::cpu());
  EXPECT_NEAR(root.validations[1].loss, share.loss, 1e-12);
  std::ifstream metrics(dir_ / "val_ranks" / "metrics.jsonl");
  int validation_lines = 0;
  for (std::string line; std::getline(metrics, line);) {
    validation_lines += line.find("\"val_loss\"") != std::string::npos;
  }
  EXPECT_EQ(validation_lines, 2);
}

}  // namespace
}  // namespace rwkv

namespace rwkv {
namespace {

// In one process ZeRO-1's shard is everything: it must train exactly like the unsharded optimizer, and its
// checkpoints (moments gathered on save, sharded again on resume) must resume exactly too.
TEST_F(TrainTrainer, ZeroOneInOneProcessMatchesTheUnshardedOptimizerExactly) {
  testing::expect_zero_one_equals_unsharded(small_config("plain"), small_config("zero"), 5, quiet_);
  EXPECT_TRUE(fs::exists(dir_ / "zero" / "rwkv-final.h5"));
}

}  // namespace
}  // namespace rwkv
