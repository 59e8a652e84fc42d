// Training with RWKV-LM's --dropout: deterministic per seed and step, bit-identical across a resume, the same
// masks however a step's samples are split (accumulation here, ranks in KeyedDropout.*), the same under
// activation checkpointing's recompute, and actually dropping (it changes the loss).
#include <gtest/gtest.h>

#include <cmath>

#include "train/io/hdf5.h"
#include "train/trainer.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

class TrainDropout : public testing::TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    testing::write_fox_corpus(dir_ / "corpus.txt");
  }
  TrainConfig config(const std::string& run, double dropout) const {
    TrainConfig c = testing::tiny_training_config(dir_ / "corpus.txt", dir_ / run);
    c.epoch_count = 2;
    c.epoch_save = 0;
    c.dropout = dropout;
    return c;
  }
  static std::vector<double> losses(const TrainOutcome& outcome) {
    std::vector<double> values;
    for (const StepRecord& r : outcome.records) values.push_back(r.loss);
    return values;
  }
  static std::vector<float> model_values(const std::string& checkpoint) {
    const hdf5::File file = hdf5::File::open_read(checkpoint);
    const hdf5::Group g = file.open_group("model");
    std::vector<float> values;
    for (const std::string& name : g.members()) {
      const auto v = g.read_tensor(name, DType::f32).to_vector<float>();
      values.insert(values.end(), v.begin(), v.end());
    }
    return values;
  }
  TrainerHooks quiet_{nullptr, true};
};

TEST_F(TrainDropout, ResumeIsBitIdentical) {
  const TrainOutcome straight = run_training(config("straight", 0.1), quiet_);
  ASSERT_EQ(straight.global_step, 8);
  TrainConfig first = config("split", 0.1);
  first.max_steps = 3;
  const TrainOutcome part1 = run_training(first, quiet_);
  TrainConfig second = config("split", 0.1);
  second.resume = "auto";
  const TrainOutcome part2 = run_training(second, quiet_);
  std::vector<double> joined = losses(part1);
  for (double loss : losses(part2)) joined.push_back(loss);
  EXPECT_EQ(joined, losses(straight));
  EXPECT_EQ(model_values((dir_ / "straight" / "rwkv-final.h5").string()),
            model_values((dir_ / "split" / "rwkv-final.h5").string()));
}

TEST_F(TrainDropout, DropsAndDependsOnTheSampleNotTheSplit) {
  TrainConfig plain = config("plain", 0.0), dropped = config("dropped", 0.2);
  plain.max_steps = dropped.max_steps = 2;
  const std::vector<double> without = losses(run_training(plain, quiet_));
  const std::vector<double> with = losses(run_training(dropped, quiet_));
  EXPECT_NE(with[0], without[0]);  // the same weights and batch: only the masks differ
  EXPECT_EQ(losses(run_training(dropped, quiet_)), with);  // deterministic (the run restarts from step 0)
  // micro_bsz 2 x accumulate 2 reads the same samples with the same masks as micro_bsz 4.
  TrainConfig accumulated = config("accumulated", 0.2);
  accumulated.max_steps = 2;
  accumulated.micro_bsz = 2;
  accumulated.accumulate_grad_batches = 2;
  const std::vector<double> split = losses(run_training(accumulated, quiet_));
  ASSERT_EQ(split.size(), with.size());
  for (size_t i = 0; i < split.size(); ++i) EXPECT_NEAR(split[i], with[i], 1e-5) << i;
}

TEST_F(TrainDropout, CheckpointedBlocksRecomputeTheSameMasks) {
  TrainConfig stored = config("stored", 0.2), recomputed = config("recomputed", 0.2);
  stored.max_steps = recomputed.max_steps = 3;
  recomputed.grad_cp = 1;
  const std::vector<double> a = losses(run_training(stored, quiet_));
  const std::vector<double> b = losses(run_training(recomputed, quiet_));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << i;
}

}  // namespace
}  // namespace rwkv
