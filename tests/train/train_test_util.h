// Fixtures shared by the trainer-level tests: a fresh directory per test, the tiny byte corpus and config the
// trainer tests learn from, and the message of an expected error.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/test_util.h"
#include "train/config/config.h"
#include "train/io/hdf5.h"
#include "train/trainer.h"

namespace rwkv::testing {

// dir_: <temp>/rwkv_<suite>_<pid>_<test>, empty at the start of each test and removed after it.
class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("rwkv_" + std::string(test->test_suite_name()) + "_" + std::to_string(::getpid()) + "_" + test->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

// A small byte-level corpus with structure to learn.
inline void write_fox_corpus(const std::filesystem::path& path) {
  std::ofstream text(path);
  for (int i = 0; i < 400; ++i) text << "the quick brown fox " << i % 7 << " jumps over the lazy dog.\n";
}

// A 2-layer, 32-wide byte-level model on `data`, 4 steps per mini-epoch; the tests set the rest.
inline TrainConfig tiny_training_config(const std::filesystem::path& data, const std::filesystem::path& proj_dir) {
  TrainConfig c;
  c.data_file = data.string();
  c.data_type = "bytes";
  c.proj_dir = proj_dir.string();
  c.n_layer = 2;
  c.n_embd = 32;
  c.ctx_len = 32;
  c.micro_bsz = 4;
  c.epoch_steps = 4;
  c.lr_init = 2e-3;
  c.lr_final = 2e-4;
  c.keep_last = 0;
  return c;
}

// A fresh directory (mkdtemp) removed with its contents when the object goes, for tests that are not fixtures.
class ScratchDir {
public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "rwkv-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
    EXPECT_FALSE(path_.empty()) << "mkdtemp failed";
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  size_t file_count() const {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(path_), {}));
  }

private:
  std::string path_;
};

// Runs fn and expects an rwkv::Error whose message contains every fragment; returns the message.
inline std::string expect_error(const std::function<void()>& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
    }
    return message;
  }
  ADD_FAILURE() << "expected an rwkv::Error";
  return "";
}

// Every float of a checkpoint group ("model", "optimizer/exp_avg", ...), datasets in file order: for comparing
// two checkpoints exactly.
inline std::vector<float> checkpoint_values(const std::string& checkpoint, const char* group) {
  const hdf5::File file = hdf5::File::open_read(checkpoint);
  std::vector<float> values;
  const hdf5::Group g = file.open_group(group);
  for (const std::string& name : g.members()) {
    if (!g.contains_dataset(name)) continue;
    const auto v = g.read_tensor(name, DType::f32).to_vector<float>();
    values.insert(values.end(), v.begin(), v.end());
  }
  return values;
}

// ZeRO-1 against the unsharded optimizer: `plain` trains straight through, then `sharded` (the same run with
// zero = 1 in its own proj_dir) stops after `stop_after` steps and resumes to the end. The final checkpoints must
// hold the same model and Adam moments to the bit (moments gathered on save, sharded again on resume).
inline void expect_zero_one_equals_unsharded(const TrainConfig& plain, TrainConfig sharded, int64_t stop_after,
                                             const TrainerHooks& hooks) {
  const TrainOutcome straight = run_training(plain, hooks);
  sharded.zero = 1;
  sharded.max_steps = stop_after;
  run_training(sharded, hooks);
  sharded.max_steps = 0;
  sharded.resume = "auto";
  const TrainOutcome resumed = run_training(sharded, hooks);
  ASSERT_EQ(resumed.global_step, straight.global_step);
  const std::string a = straight.last_checkpoint, b = resumed.last_checkpoint;
  EXPECT_EQ(std::filesystem::path(a).filename(), std::filesystem::path(b).filename());
  EXPECT_EQ(checkpoint_values(a, "model"), checkpoint_values(b, "model"));
  EXPECT_EQ(checkpoint_values(a, "optimizer/exp_avg"), checkpoint_values(b, "optimizer/exp_avg"));
  EXPECT_EQ(checkpoint_values(a, "optimizer/exp_avg_sq"), checkpoint_values(b, "optimizer/exp_avg_sq"));
}

}  // namespace rwkv::testing
