// Feedback files in proj_dir: metrics.jsonl (one JSON object per step, appended) and loss.svg (the loss curve,
// redrawn at each checkpoint).
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace rwkv {

class RunLog {
public:
  // Opens proj_dir/metrics.jsonl for appending, keeping earlier records up to `resume_step` (for the curve).
  RunLog(const std::string& proj_dir, int64_t resume_step);
  void append(const StepRecord& record);
  void write_loss_curve() const;  // proj_dir/loss.svg, written atomically

private:
  std::string proj_dir_;
  std::ofstream metrics_;
  std::vector<std::pair<int64_t, double>> losses_;
};

// An SVG line chart of (step, loss), with axes and labels.
std::string loss_curve_svg(const std::vector<std::pair<int64_t, double>>& losses);

}  // namespace rwkv
