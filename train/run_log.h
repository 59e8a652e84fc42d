// Feedback files in proj_dir: metrics.jsonl (one JSON object per step and per validation, appended), loss.svg
// (the training and validation loss curves, redrawn at each checkpoint) and run.json (the configuration,
// hardware and start time of the latest run, written when it starts; `rwkv report` reads all three).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/durable_file.h"
#include "train/trainer.h"

namespace rwkv {

inline constexpr const char* kRwkvVersion = RWKV_VERSION;  // the CMake project's version

class RunLog {
public:
  // Opens proj_dir/metrics.jsonl for appending, keeping earlier records (steps and validations) up to
  // `resume_step`: the steps after it are redone by this run. When records must go (later steps, a line torn
  // by a crash) the file is replaced atomically, never truncated in place.
  RunLog(const std::string& proj_dir, int64_t resume_step);
  void append(const StepRecord& record);
  void append(const ValidationRecord& record);
  void sync();                    // what was appended is on disk (before a checkpoint that counts on it)
  void write_loss_curve() const;  // proj_dir/loss.svg, replaced atomically

private:
  std::string proj_dir_;
  AppendOnlyFile metrics_;  // one write(2) per record: a crash leaves at most a torn last line
  std::vector<std::pair<int64_t, double>> losses_;
  std::vector<std::pair<int64_t, double>> val_losses_;
};

// An SVG line chart of (step, loss), with axes and labels, and the validation loss as a second curve if any.
std::string loss_curve_svg(const std::vector<std::pair<int64_t, double>>& losses,
                           const std::vector<std::pair<int64_t, double>>& val_losses = {});

// What run.json records besides the machine, the version and the time, which it finds itself.
struct RunInfo {
  std::string config_ini;  // TrainConfig::to_ini()
  std::string origin;      // "fresh init (seed 42)", "resumed from ...", ...
  std::string device;      // "cpu", "cuda:0"
  std::string gpu_name;    // empty on the CPU
  int64_t ranks = 1;
  int64_t start_step = 0;
};
void write_run_info(const std::string& proj_dir, const RunInfo& info);

// The process's peak resident set size in bytes (getrusage), 0 when unknown.
int64_t process_peak_rss_bytes();
// "AMD EPYC 7763 64-Core Processor" from /proc/cpuinfo; "unknown" when it cannot tell.
std::string cpu_model_name();

}  // namespace rwkv
