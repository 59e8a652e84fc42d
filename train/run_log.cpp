#include "train/run_log.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <thread>

#include "core/durable_file.h"
#include "core/error.h"
#include "data/json.h"

namespace rwkv {

namespace {

// A record this class wrote: "step" first, then "loss" (a training step) or "val_loss" (a validation).
struct ParsedLine {
  int64_t step = 0;
  double loss = 0;
  bool validation = false;
  bool skipped = false;
};

bool parse_record(const std::string& line, ParsedLine& parsed) {
  long long step = 0;
  int consumed = 0;
  if (std::sscanf(line.c_str(), "{\"step\": %lld, %n", &step, &consumed) != 1 || consumed == 0) return false;
  parsed.step = step;
  const char* rest = line.c_str() + consumed;
  if (std::string_view(rest).starts_with("\"loss\": null")) {  // a non-finite loss: a skipped step
    parsed.loss = NAN;
    parsed.skipped = true;
  } else if (std::sscanf(rest, "\"loss\": %lf", &parsed.loss) == 1) {
    parsed.skipped = line.find("\"skipped\": true") != std::string::npos;
  } else if (std::string_view(rest).starts_with("\"val_loss\": ")) {
    parsed.validation = true;
    if (std::sscanf(rest, "\"val_loss\": %lf", &parsed.loss) != 1) parsed.loss = NAN;  // null: diverged
  } else {
    return false;
  }
  return line.back() == '}';  // a line cut short by a crash is dropped
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// A JSON number, or null for NaN and infinities (which JSON cannot represent), so every line stays valid JSON.
std::string number_or_null(double value, const char* format = "%.9g") {
  if (!std::isfinite(value)) return "null";
  char text[40];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

}  // namespace

RunLog::RunLog(const std::string& proj_dir, int64_t resume_step) : proj_dir_(proj_dir) {
  const std::string path = proj_dir + "/metrics.jsonl";
  std::string existing;
  {
    std::ifstream in(path, std::ios::binary);
    existing.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // Keep the records up to resume_step; the steps after it are redone by this run. A last line without its
  // newline was torn by a crash: it is dropped too, so that the next record starts on a line of its own.
  std::string kept;
  bool dropped = false;
  size_t begin = 0;
  while (begin < existing.size()) {
    const size_t end = existing.find('\n', begin);
    if (end == std::string::npos) {
      dropped = true;
      break;
    }
    const std::string line = existing.substr(begin, end - begin);
    begin = end + 1;
    ParsedLine parsed;
    if (line.empty() || !parse_record(line, parsed) || parsed.step > resume_step) {
      dropped = true;
      continue;
    }
    kept += line;
    kept += '\n';
    if (parsed.validation) {
      val_losses_.emplace_back(parsed.step, parsed.loss);
    } else if (!parsed.skipped) {
      losses_.emplace_back(parsed.step, parsed.loss);
    }
  }
  // Never truncated in place: a crash during the rewrite leaves the old log or the new one, whole.
  if (dropped) replace_file_atomically(path, kept);
  metrics_ = AppendOnlyFile(path);
}

void RunLog::append(const StepRecord& r) {
  char line[512];
  std::snprintf(line, sizeof(line),
                "{\"step\": %lld, \"loss\": %s, \"grad_norm\": %s, \"lr\": %.9g, \"ms\": %.3f, "
                "\"tokens_per_s\": %s, \"skipped\": %s, \"rss_peak_mib\": %.1f, \"alloc_peak_mib\": %.1f, "
                "\"reduce_wait_ms\": %.3f}\n",
                static_cast<long long>(r.step), number_or_null(r.loss).c_str(), number_or_null(r.grad_norm).c_str(),
                r.lr, r.ms, number_or_null(r.tokens_per_second, "%.1f").c_str(), r.skipped ? "true" : "false",
                mib(r.rss_peak_bytes), mib(r.allocator_peak_bytes), r.reduce_wait_ms);
  metrics_.append(line);
  if (!r.skipped) losses_.emplace_back(r.step, r.loss);
}

void RunLog::append(const ValidationRecord& r) {
  char line[256];
  std::snprintf(line, sizeof(line), "{\"step\": %lld, \"val_loss\": %s, \"val_ppl\": %s, \"val_tokens\": %lld}\n",
                static_cast<long long>(r.step), number_or_null(r.loss).c_str(), number_or_null(r.perplexity).c_str(),
                static_cast<long long>(r.tokens));
  metrics_.append(line);
  val_losses_.emplace_back(r.step, r.loss);
}

void RunLog::sync() { metrics_.sync(); }

void RunLog::write_loss_curve() const {
  try {
    replace_file_atomically(proj_dir_ + "/loss.svg", loss_curve_svg(losses_, val_losses_));
  } catch (const Error&) {
    // A convenience picture: failing to draw it never fails training (the checkpoint was saved already).
  }
}

std::string loss_curve_svg(const std::vector<std::pair<int64_t, double>>& losses,
                           const std::vector<std::pair<int64_t, double>>& val_losses) {
  const double width = 800, height = 400, left = 70, right = 20, top = 30, bottom = 50;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">training loss</text>\n";
  if (losses.empty()) return svg.str() + "</svg>\n";
  double low = losses[0].second, high = losses[0].second;
  for (const auto* series : {&losses, &val_losses}) {
    for (const auto& [step, loss] : *series) {
      if (!std::isfinite(loss)) continue;
      low = std::min(low, loss);
      high = std::max(high, loss);
    }
  }
  if (high - low < 1e-9) high = low + 1;
  const double first = static_cast<double>(losses.front().first);
  double last_step = static_cast<double>(losses.back().first);
  if (!val_losses.empty()) last_step = std::max(last_step, static_cast<double>(val_losses.back().first));
  const double last = std::max(first + 1, last_step);
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
  svg << "<text x=\"" << width / 2 << "\" y=\"" << height - 10 << "\" text-anchor=\"middle\">step</text>\n";
  svg.precision(2);
  auto polyline = [&](const std::vector<std::pair<int64_t, double>>& series, const char* colour) {
    svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [step, loss] : series) {
      if (std::isfinite(loss)) svg << x_of(static_cast<double>(step)) << "," << y_of(loss) << " ";
    }
    svg << "\"/>\n";
  };
  polyline(losses, "#1f77b4");
  if (!val_losses.empty()) {
    polyline(val_losses, "#ff7f0e");
    for (const auto& [step, loss] : val_losses) {  // a validation may be a single point: mark each one
      if (std::isfinite(loss)) {
        svg << "<circle cx=\"" << x_of(static_cast<double>(step)) << "\" cy=\"" << y_of(loss)
            << "\" r=\"3\" fill=\"#ff7f0e\"/>\n";
      }
    }
    svg << "<line x1=\"" << width - right - 170 << "\" y1=\"" << top + 10 << "\" x2=\"" << width - right - 150
        << "\" y2=\"" << top + 10 << "\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n<text x=\""
        << width - right - 145 << "\" y=\"" << top + 14 << "\">training</text>\n<line x1=\"" << width - right - 80
        << "\" y1=\"" << top + 10 << "\" x2=\"" << width - right - 60 << "\" y2=\"" << top + 10
        << "\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>\n<text x=\"" << width - right - 55 << "\" y=\"" << top + 14
        << "\">validation</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

int64_t process_peak_rss_bytes() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (!line.starts_with("model name")) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
  }
  return "unknown";
}

void write_run_info(const std::string& proj_dir, const RunInfo& info) {
  namespace json = data::json;
  char started[32] = "";
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  if (::gmtime_r(&now, &utc) != nullptr) std::strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &utc);
  char host[256] = "";
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::ostringstream out;
  out << "{\n  \"rwkv_version\": " << json::quote(kRwkvVersion) << ",\n  \"started_utc\": " << json::quote(started)
      << ",\n  \"start_step\": " << info.start_step << ",\n  \"origin\": " << json::quote(info.origin)
      << ",\n  \"hardware\": {\"host\": " << json::quote(host) << ", \"cpu\": " << json::quote(cpu_model_name())
      << ", \"cpu_cores\": " << std::thread::hardware_concurrency() << ", \"device\": " << json::quote(info.device)
      << ", \"gpu\": " << (info.gpu_name.empty() ? std::string("null") : json::quote(info.gpu_name))
      << ", \"ranks\": " << info.ranks << "},\n  \"config\": {";
  // The resolved config as "key": "value" pairs, in table order.
  std::istringstream lines(info.config_ini);
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    const size_t equals = line.find(" = ");
    if (equals == std::string::npos) continue;
    out << (first ? "\n    " : ",\n    ") << json::quote(line.substr(0, equals)) << ": "
        << json::quote(line.substr(equals + 3));
    first = false;
  }
  out << "\n  }\n}\n";
  try {
    replace_file_atomically(proj_dir + "/run.json", out.str());
  } catch (const Error&) {
    // Not needed to train: `rwkv report` falls back to the checkpoints' config.
  }
}

}  // namespace rwkv
