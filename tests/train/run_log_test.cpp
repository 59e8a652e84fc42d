// metrics.jsonl across crashes and resumes: records up to the resume step are kept, later ones and a line torn
// by a kill are dropped, the file is replaced atomically when anything goes and only appended to otherwise.
#include "train/run_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

class TrainRunLog : public testing::TempDirTest {
protected:
  fs::path metrics() const { return dir_ / "metrics.jsonl"; }
  std::string read() const {
    std::ifstream in(metrics(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  ino_t inode() const {
    struct stat info {};
    EXPECT_EQ(::stat(metrics().c_str(), &info), 0);
    return info.st_ino;
  }
  static StepRecord step(int64_t n) {
    StepRecord r;
    r.step = n;
    r.loss = 1.0 / static_cast<double>(n);
    r.lr = 1e-3;
    return r;
  }
};

std::string record_line(int64_t n) {
  return "{\"step\": " + std::to_string(n) + ", \"loss\": 2.5, \"grad_norm\": 1, \"lr\": 0.001, \"ms\": 1, "
         "\"tokens_per_s\": 1, \"skipped\": false, \"rss_peak_mib\": 1.0, \"alloc_peak_mib\": 1.0, "
         "\"reduce_wait_ms\": 0.000}\n";
}

TEST_F(TrainRunLog, ResumeKeepsTheRecordsUpToItsStepAndDropsLaterOnesAndATornLine) {
  std::string before;
  for (int n = 1; n <= 5; ++n) before += record_line(n);
  before += "{\"step\": 4, \"val_loss\": 2.25, \"val_ppl\": 9.48, \"val_tokens\": 64}\n" + record_line(6);
  std::ofstream(metrics(), std::ios::binary) << before << "{\"step\": 7, \"loss\": 2.";  // killed mid-write
  const ino_t old_inode = inode();
  {
    RunLog log(dir_.string(), 4);  // the newest checkpoint is at step 4: steps 5.. are redone
    log.append(step(5));
  }
  std::string expected;
  for (int n = 1; n <= 4; ++n) expected += record_line(n);
  expected += "{\"step\": 4, \"val_loss\": 2.25, \"val_ppl\": 9.48, \"val_tokens\": 64}\n";
  const std::string after = read();
  ASSERT_EQ(after.substr(0, expected.size()), expected);
  EXPECT_TRUE(after.substr(expected.size()).starts_with("{\"step\": 5, \"loss\": 0.2,")) << after;
  EXPECT_TRUE(after.ends_with("}\n"));
  // Replaced through a new file (a kill during the rewrite leaves the old log whole), not truncated in place.
  EXPECT_NE(inode(), old_inode);
  EXPECT_FALSE(fs::exists(dir_ / ("metrics.jsonl.tmp-" + std::to_string(::getpid()))));
}

TEST_F(TrainRunLog, ATornLastLineIsCutOffEvenWhenNothingElseGoes) {
  std::ofstream(metrics(), std::ios::binary) << record_line(1) << record_line(2) << "{\"step\": 3, \"lo";
  {
    RunLog log(dir_.string(), 2);
    log.append(step(3));
  }
  const std::string after = read();
  EXPECT_TRUE(after.starts_with(record_line(1) + record_line(2) + "{\"step\": 3, \"loss\": 0.333")) << after;
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'), 3);
}

TEST_F(TrainRunLog, AResumeAtTheEndOfTheLogOnlyAppends) {
  std::ofstream(metrics(), std::ios::binary) << record_line(1) << record_line(2);
  const ino_t old_inode = inode();
  {
    RunLog log(dir_.string(), 2);
    log.append(step(3));
    log.sync();
  }
  EXPECT_EQ(inode(), old_inode);  // nothing was rewritten
  EXPECT_TRUE(read().starts_with(record_line(1) + record_line(2) + "{\"step\": 3, ")) << read();
}

TEST_F(TrainRunLog, AFreshRunStartsAnEmptyLogAndDrawsTheCurveAtomically) {
  std::ofstream(metrics(), std::ios::binary) << record_line(1) << record_line(2);  // a run that never saved
  {
    RunLog log(dir_.string(), 0);
    log.append(step(1));
    log.write_loss_curve();
  }
  const std::string after = read();
  EXPECT_TRUE(after.starts_with("{\"step\": 1, \"loss\": 1,")) << after;
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'), 1);
  std::ifstream svg(dir_ / "loss.svg");
  const std::string text{std::istreambuf_iterator<char>(svg), std::istreambuf_iterator<char>()};
  EXPECT_TRUE(text.ends_with("</svg>\n"));
  for (const auto& item : fs::directory_iterator(dir_)) {
    EXPECT_EQ(item.path().filename().string().find(".tmp"), std::string::npos) << item.path();
  }
}

}  // namespace
}  // namespace rwkv
