// `rwkv report`: reading a run directory (metrics, run.json, checkpoints), its errors and warnings, and a page
// that escapes everything taken from files. The page's charts are checked in a real browser by
// tests/cli/report.sh.
#include "train/report.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "train/run_log.h"
#include "train/trainer.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

class TrainReport : public testing::TempDirTest {
protected:
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::string error_of(const std::string& proj_dir) const {
    try {
      read_run_report(proj_dir);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error for " << proj_dir;
    return "";
  }
};

const char* kTwoSteps =
    "{\"step\": 1, \"loss\": 5.5, \"grad_norm\": 1.2, \"lr\": 0.001, \"ms\": 10, \"tokens_per_s\": 1000, "
    "\"skipped\": false, \"rss_peak_mib\": 100.5, \"alloc_peak_mib\": 20}\n"
    "{\"step\": 2, \"loss\": null, \"grad_norm\": null, \"lr\": 0.001, \"ms\": 10, \"tokens_per_s\": 900, "
    "\"skipped\": true, \"rss_peak_mib\": 101, \"alloc_peak_mib\": 20}\n"
    "{\"step\": 2, \"val_loss\": 5.25, \"val_ppl\": 190.5, \"val_tokens\": 64}\n";

TEST_F(TrainReport, ReadsStepsValidationsAndMemory) {
  write("metrics.jsonl", kTwoSteps);
  const RunReport report = read_run_report(dir_.string());
  ASSERT_EQ(report.steps.size(), 2u);
  EXPECT_EQ(report.steps[0].loss, 5.5);
  EXPECT_EQ(report.steps[0].rss_peak_bytes, static_cast<int64_t>(100.5 * (1 << 20)));
  EXPECT_EQ(report.steps[0].allocator_peak_bytes, int64_t{20} << 20);
  EXPECT_TRUE(std::isnan(report.steps[1].loss));  // null: a non-finite loss
  EXPECT_TRUE(report.steps[1].skipped);
  ASSERT_EQ(report.validations.size(), 1u);
  EXPECT_EQ(report.validations[0].step, 2);
  EXPECT_EQ(report.validations[0].loss, 5.25);
  EXPECT_EQ(report.validations[0].tokens, 64);
  EXPECT_TRUE(report.checkpoints.empty());
  ASSERT_EQ(report.warnings.size(), 1u);  // no configuration anywhere
  EXPECT_NE(report.warnings[0].find("no configuration"), std::string::npos);
}

TEST_F(TrainReport, MissingOrEmptyRunIsAClearError) {
  std::string error = error_of((dir_ / "nope").string());
  EXPECT_NE(error.find("nope"), std::string::npos) << error;
  EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
  error = error_of(dir_.string());
  EXPECT_NE(error.find("metrics.jsonl is missing"), std::string::npos) << error;
  write("metrics.jsonl", "");
  error = error_of(dir_.string());
  EXPECT_NE(error.find("has no training records"), std::string::npos) << error;
  write("metrics.jsonl", "{\"step\": 1, \"val_loss\": 2, \"val_ppl\": 7.4, \"val_tokens\": 3}\n");
  error = error_of(dir_.string());
  EXPECT_NE(error.find("has no training records"), std::string::npos) << error;
}

TEST_F(TrainReport, ATornLastRecordIsSkippedWithAWarningButADamagedOneIsAnError) {
  write("metrics.jsonl", std::string(kTwoSteps) + "{\"step\": 3, \"loss\": 5.1, \"grad_n");
  const RunReport report = read_run_report(dir_.string());
  EXPECT_EQ(report.steps.size(), 2u);
  bool warned = false;
  for (const std::string& warning : report.warnings) warned |= warning.find("line 4") != std::string::npos;
  EXPECT_TRUE(warned);

  write("metrics.jsonl", std::string("{\"step\": 1, \"loss\": 5.5, \"grad\n") + kTwoSteps);
  std::string error = error_of(dir_.string());
  EXPECT_NE(error.find("metrics.jsonl line 1"), std::string::npos) << error;
  write("metrics.jsonl", std::string(kTwoSteps) + "{\"loss\": 1}\n" + kTwoSteps);
  error = error_of(dir_.string());
  EXPECT_NE(error.find("metrics.jsonl line 4"), std::string::npos) << error;
  EXPECT_NE(error.find("step"), std::string::npos) << error;
}

TEST_F(TrainReport, EscapesEverythingTakenFromFiles) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  const fs::path run = dir_ / "<script>alert(1)</script>";
  fs::create_directories(run);
  std::ofstream(run / "metrics.jsonl") << kTwoSteps;
  RunInfo info;
  info.config_ini = "proj_dir = <img src=x onerror=alert(2)>\ndata_file = </script><script>alert(3)</script>\n";
  info.origin = "fresh \"init\" <u>";
  info.device = "cpu";
  write_run_info(run.string(), info);
  const RunReport report = read_run_report(run.string());
  ASSERT_EQ(report.config.size(), 2u);
  EXPECT_EQ(report.config[1].second, "</script><script>alert(3)</script>");
  const std::string html = render_report_html(report);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<u>"), std::string::npos);
  EXPECT_EQ(html.find("alert(1)</script>"), std::string::npos);  // not in the title, heading or script data
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("&lt;img src=x onerror=alert(2)&gt;"), std::string::npos);
  EXPECT_NE(html.find("fresh &quot;init&quot; &lt;u&gt;"), std::string::npos);
  // Exactly two script elements: the data and the drawing code.
  size_t scripts = 0;
  for (size_t at = html.find("<script"); at != std::string::npos; at = html.find("<script", at + 1)) ++scripts;
  EXPECT_EQ(scripts, 2u);
  // No network: no external resource of any kind.
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  for (const char* fetches : {"<link", "<img", "<iframe", "src=\"", "url(", "@import"}) {
    EXPECT_EQ(html.find(fetches), std::string::npos) << fetches;
  }
}

TEST_F(TrainReport, ShowsTheConfigHardwareCurvesAndCheckpointsOfARealRun) {
  std::ofstream text(dir_ / "corpus.txt");
  for (int i = 0; i < 200; ++i) text << "the quick brown fox " << i % 7 << " jumps over the lazy dog.\n";
  text.close();
  TrainConfig config;
  config.data_file = (dir_ / "corpus.txt").string();
  config.data_type = "bytes";
  config.val_data_file = config.data_file;
  config.val_data_type = "bytes";
  config.val_every = 2;
  config.val_max_windows = 4;
  config.proj_dir = (dir_ / "run").string();
  config.n_layer = 2;
  config.n_embd = 16;
  config.ctx_len = 16;
  config.micro_bsz = 2;
  config.epoch_steps = 4;
  config.epoch_count = 1;
  config.save_every_steps = 2;
  config.keep_last = 0;
  run_training(config, TrainerHooks{nullptr, true});

  const RunReport report = read_run_report(config.proj_dir);
  EXPECT_TRUE(report.warnings.empty());
  ASSERT_EQ(report.steps.size(), 4u);
  for (const StepRecord& step : report.steps) {
    EXPECT_GT(step.rss_peak_bytes, 0);
    EXPECT_GT(step.allocator_peak_bytes, 0);
  }
  ASSERT_EQ(report.validations.size(), 2u);
  EXPECT_EQ(report.validations[1].step, 4);
  EXPECT_EQ(report.config_source, config.proj_dir + "/run.json");
  bool found_val_every = false;
  for (const auto& [key, value] : report.config) found_val_every |= key == "val_every" && value == "2";
  EXPECT_TRUE(found_val_every);
  std::map<std::string, std::string> run(report.run.begin(), report.run.end());
  EXPECT_EQ(run["rwkv version"], kRwkvVersion);
  EXPECT_EQ(run["device"], "cpu");
  EXPECT_EQ(run["ranks"], "1");
  EXPECT_FALSE(run["cpu"].empty());
  EXPECT_EQ(run["gpu"], "none");
  // Checkpoints at steps 2 and 4 (the final one), oldest first, with sizes and times.
  ASSERT_EQ(report.checkpoints.size(), 2u);
  EXPECT_EQ(report.checkpoints[0].name, "rwkv-step-2.h5");
  EXPECT_EQ(report.checkpoints[0].step, 2);
  EXPECT_EQ(report.checkpoints[1].name, "rwkv-final.h5");
  EXPECT_GT(report.checkpoints[1].bytes, 1000u);
  EXPECT_NE(report.checkpoints[1].modified_utc.find("UTC"), std::string::npos);

  const std::string html = render_report_html(report);
  EXPECT_NE(html.find("<td>rwkv-step-2.h5</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>val_every</th><td>2</td>"), std::string::npos);
  EXPECT_NE(html.find("id=\"chart-loss\""), std::string::npos);
  EXPECT_NE(html.find("\"validation\":{\"step\":[2,4]"), std::string::npos);

  // Runs from before run.json: the configuration comes from the newest checkpoint.
  fs::remove(fs::path(config.proj_dir) / "run.json");
  const RunReport older = read_run_report(config.proj_dir);
  EXPECT_EQ(older.config_source, config.proj_dir + "/rwkv-final.h5");
  EXPECT_EQ(older.config, report.config);
  EXPECT_TRUE(older.run.empty());
}

}  // namespace
}  // namespace rwkv
