#include "train/run_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.h"

namespace rwkv {

namespace {

// Reads "step" and "loss" from the lines this class writes (keys in a fixed order).
bool parse_record(const std::string& line, int64_t& step, double& loss, bool& skipped) {
  return std::sscanf(line.c_str(), "{\"step\": %lld, \"loss\": %lf", reinterpret_cast<long long*>(&step), &loss) == 2 &&
         ((skipped = line.find("\"skipped\": true") != std::string::npos), true);
}

}  // namespace

RunLog::RunLog(const std::string& proj_dir, int64_t resume_step) : proj_dir_(proj_dir) {
  const std::string path = proj_dir + "/metrics.jsonl";
  std::vector<std::string> kept;
  {
    std::ifstream existing(path);
    std::string line;
    while (std::getline(existing, line)) {
      int64_t step = 0;
      double loss = 0;
      bool skipped = false;
      if (!parse_record(line, step, loss, skipped) || step > resume_step) continue;  // drop steps redone after a resume
      kept.push_back(line);
      if (!skipped) losses_.emplace_back(step, loss);
    }
  }
  std::ofstream rewrite(path, std::ios::trunc);
  for (const std::string& line : kept) rewrite << line << "\n";
  rewrite.close();
  metrics_.open(path, std::ios::app);
  RWKV_CHECK(metrics_.good(), "cannot write ", path);
}

void RunLog::append(const StepRecord& r) {
  char line[512];
  std::snprintf(line, sizeof(line),
                "{\"step\": %lld, \"loss\": %.9g, \"grad_norm\": %.9g, \"lr\": %.9g, \"ms\": %.3f, "
                "\"tokens_per_s\": %.1f, \"skipped\": %s}\n",
                static_cast<long long>(r.step), r.loss, r.grad_norm, r.lr, r.ms, r.tokens_per_second,
                r.skipped ? "true" : "false");
  metrics_ << line;
  metrics_.flush();
  if (!r.skipped) losses_.emplace_back(r.step, r.loss);
}

void RunLog::write_loss_curve() const {
  const std::string path = proj_dir_ + "/loss.svg", temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << loss_curve_svg(losses_);
    if (!out.good()) return;  // the curve is a convenience: never fail training over it
  }
  std::error_code ignored;
  std::filesystem::rename(temporary, path, ignored);
}

std::string loss_curve_svg(const std::vector<std::pair<int64_t, double>>& losses) {
  const double width = 800, height = 400, left = 70, right = 20, top = 30, bottom = 50;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">training loss</text>\n";
  if (losses.empty()) return svg.str() + "</svg>\n";
  double low = losses[0].second, high = losses[0].second;
  for (const auto& [step, loss] : losses) {
    if (!std::isfinite(loss)) continue;
    low = std::min(low, loss);
    high = std::max(high, loss);
  }
  if (high - low < 1e-9) high = low + 1;
  const double first = static_cast<double>(losses.front().first);
  const double last = std::max(first + 1, static_cast<double>(losses.back().first));
  auto x_of = [&](double step) { return left + (step - first) / (last - first) * (width - left - right); };
  auto y_of = [&](double loss) { return top + (high - loss) / (high - low) * (height - top - bottom); };
  svg << "<line x1=\"" << left << "\" y1=\"" << height - bottom << "\" x2=\"" << width - right << "\" y2=\""
      << height - bottom << "\" stroke=\"black\"/>\n<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left
      << "\" y2=\"" << height - bottom << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double loss = low + (high - low) * i / 4, step = first + (last - first) * i / 4;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y_of(loss) + 4 << "\" text-anchor=\"end\">" << std::fixed;
    svg.precision(3);
    svg << loss << "</text>\n<text x=\"" << x_of(step) << "\" y=\"" << height - bottom + 18
        << "\" text-anchor=\"middle\">";
    svg.precision(0);
    svg << step << "</text>\n";
  }
  svg << "<text x=\"" << width / 2 << "\" y=\"" << height - 10 << "\" text-anchor=\"middle\">step</text>\n"
      << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
  svg.precision(2);
  for (const auto& [step, loss] : losses) {
    if (std::isfinite(loss)) svg << x_of(static_cast<double>(step)) << "," << y_of(loss) << " ";
  }
  svg << "\"/>\n</svg>\n";
  return svg.str();
}

}  // namespace rwkv
