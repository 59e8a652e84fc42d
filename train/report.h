// `rwkv report`: one self-contained HTML page about a training run, read from its proj_dir: the configuration,
// the hardware, the training and validation loss, learning rate, tokens/s and memory over the steps, and the
// checkpoints. The page has no external resources: its script draws the charts (inline SVG) from the JSON data
// embedded in it, and everything taken from files is escaped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "train/trainer.h"

namespace rwkv {

struct ReportCheckpoint {
  std::string name;
  int64_t step = 0;
  uint64_t bytes = 0;
  std::string modified_utc;  // "2026-11-23 15:04:05"
};

// What the page shows.
struct RunReport {
  std::string proj_dir;
  std::vector<std::pair<std::string, std::string>> run;     // version, start time, origin, hardware (run.json)
  std::vector<std::pair<std::string, std::string>> config;  // key, value in table order
  std::string config_source;                                // "run.json", a checkpoint path, or "" (none found)
  std::vector<StepRecord> steps;
  std::vector<ValidationRecord> validations;
  std::vector<ReportCheckpoint> checkpoints;  // by step, oldest first
  std::vector<std::string> warnings;          // things skipped (a torn last record, an unusable checkpoint)
};

// Reads proj_dir/metrics.jsonl (required, with at least one step), run.json (else the newest checkpoint's
// config) and the checkpoints. A missing directory or metrics file, or a malformed record other than a last one
// cut short by a crash, is an error naming the file and the line.
RunReport read_run_report(const std::string& proj_dir);

std::string render_report_html(const RunReport& report);

// Text made safe for HTML content and attribute values.
std::string html_escape(std::string_view text);

}  // namespace rwkv
