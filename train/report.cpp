#include "train/report.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "data/json.h"
#include "train/io/checkpoint.h"
#include "train/config/config.h"

namespace rwkv {

namespace {

namespace fs = std::filesystem;
namespace json = data::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RWKV_CHECK(in.good(), "report: cannot read ", path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A number field of a record; NaN when absent or null (non-finite values are written as null).
double number_field(const json::Value& record, const char* key) {
  const json::Value* value = record.find(key);
  return value != nullptr && value->is_number() ? value->as_number() : NAN;
}

void read_metrics(const std::string& path, RunReport& report) {
  const std::string text = read_file(path);
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(i + 1);
    try {
      const json::Value record = json::parse(line);
      RWKV_CHECK(record.is_object(), "not a JSON object");
      const int64_t step = record.at("step").as_int64();
      if (record.find("val_loss") != nullptr) {
        ValidationRecord validation;
        validation.step = step;
        validation.loss = number_field(record, "val_loss");
        validation.perplexity = number_field(record, "val_ppl");
        const json::Value* tokens = record.find("val_tokens");
        validation.tokens = tokens != nullptr && tokens->is_number() ? tokens->as_int64() : 0;
        report.validations.push_back(validation);
      } else {
        RWKV_CHECK(record.find("loss") != nullptr, "neither \"loss\" nor \"val_loss\"");
        StepRecord steps;
        steps.step = step;
        steps.loss = number_field(record, "loss");
        steps.grad_norm = number_field(record, "grad_norm");
        steps.lr = number_field(record, "lr");
        steps.ms = number_field(record, "ms");
        steps.tokens_per_second = number_field(record, "tokens_per_s");
        const json::Value* skipped = record.find("skipped");
        steps.skipped = skipped != nullptr && skipped->is_bool() && skipped->as_bool();
        // Absent in runs logged before memory was recorded.
        const double rss = number_field(record, "rss_peak_mib"), allocated = number_field(record, "alloc_peak_mib");
        steps.rss_peak_bytes = std::isfinite(rss) ? static_cast<int64_t>(rss * (1 << 20)) : 0;
        steps.allocator_peak_bytes = std::isfinite(allocated) ? static_cast<int64_t>(allocated * (1 << 20)) : 0;
        report.steps.push_back(steps);
      }
    } catch (const Error& e) {
      // A crash can leave the last record half written: skip it. Anything else is a damaged file.
      RWKV_CHECK(i + 1 == lines.size(), "report: ", where, ": ", e.what());
      report.warnings.push_back("skipped the incomplete last record of " + path + " (line " + std::to_string(i + 1) +
                                ", probably cut short by a crash): " + e.what());
    }
  }
}

std::string utc_time(std::time_t time) {
  std::tm utc{};
  char text[32] = "";
  if (::gmtime_r(&time, &utc) != nullptr) std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

std::string string_of(const json::Value& value) {
  if (value.is_string()) return value.as_string();
  if (value.is_null()) return "none";
  if (value.is_bool()) return value.as_bool() ? "true" : "false";
  if (value.is_integer()) return std::to_string(value.as_int64());
  if (value.is_number()) return json::number(value.as_number());
  return "(structured)";
}

void read_run_info(const std::string& path, RunReport& report) {
  json::Value info;
  try {
    info = json::parse(read_file(path));
    RWKV_CHECK(info.is_object(), "not a JSON object");
  } catch (const Error& e) {
    report.warnings.push_back("ignored " + path + ": " + e.what());
    return;
  }
  static const std::pair<const char*, const char*> kFacts[] = {
      {"rwkv_version", "rwkv version"}, {"started_utc", "started (UTC)"}, {"start_step", "started at step"},
      {"origin", "weights"}};
  for (const auto& [key, label] : kFacts) {
    if (const json::Value* value = info.find(key)) report.run.emplace_back(label, string_of(*value));
  }
  if (const json::Value* hardware = info.find("hardware"); hardware != nullptr && hardware->is_object()) {
    for (const auto& [key, value] : hardware->items()) report.run.emplace_back(key, string_of(value));
  }
  if (const json::Value* config = info.find("config"); config != nullptr && config->is_object()) {
    for (const auto& [key, value] : config->items()) report.config.emplace_back(key, string_of(value));
    report.config_source = path;
  }
}

// The config text of a checkpoint as (key, value) pairs.
std::vector<std::pair<std::string, std::string>> ini_pairs(const std::string& ini) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::istringstream lines(ini);
  for (std::string line; std::getline(lines, line);) {
    const size_t equals = line.find(" = ");
    if (equals != std::string::npos) pairs.emplace_back(line.substr(0, equals), line.substr(equals + 3));
  }
  return pairs;
}

// JSON for the page's script, safe inside <script>: '<', '>' and '&' only occur in strings, as \u escapes.
std::string script_safe(const std::string& json_text) {
  std::string out;
  for (const char c : json_text) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number_or_null(double value) { return std::isfinite(value) ? json::number(value) : "null"; }

template <typename Record, typename Field>
std::string json_array(const std::vector<Record>& records, Field field) {
  std::string out = "[";
  for (size_t i = 0; i < records.size(); ++i) out += (i ? "," : "") + number_or_null(field(records[i]));
  return out + "]";
}

std::string human_bytes(uint64_t bytes) {
  char text[32];
  if (bytes >= (uint64_t{1} << 30)) {
    std::snprintf(text, sizeof(text), "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  } else if (bytes >= (uint64_t{1} << 20)) {
    std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else {
    std::snprintf(text, sizeof(text), "%.1f KiB", static_cast<double>(bytes) / 1024);
  }
  return text;
}

void table(std::ostringstream& html, const std::vector<std::pair<std::string, std::string>>& rows) {
  html << "<table class=\"kv\">\n";
  for (const auto& [key, value] : rows) {
    html << "<tr><th>" << html_escape(key) << "</th><td>" << html_escape(value) << "</td></tr>\n";
  }
  html << "</table>\n";
}

// The charts: the script turns each series of the embedded data into an SVG path (one M/L command per point).
constexpr const char* kScript = R"JS(
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  function make(name, attributes, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attributes) node.setAttribute(key, attributes[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function label(value) {
    const size = Math.abs(value);
    if (size !== 0 && (size < 1e-3 || size >= 1e6)) return value.toExponential(2);
    return String(Number(value.toPrecision(4)));
  }
  function finite(value) { return value !== null && Number.isFinite(value); }
  // About five round values (1, 2 or 5 times a power of ten apart) covering [low, high].
  function ticks(low, high, integers) {
    const raw = (high - low) / 5;
    if (!(raw > 0) || !Number.isFinite(raw)) return [low, high];
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 5].map(function (m) { return m * power; }).find(function (s) { return s >= raw; }) || 10 * power;
    if (integers) step = Math.max(1, Math.round(step));
    const values = [];
    for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) values.push(v);
    return values;
  }
  function chart(id, series, yName) {
    const svg = document.getElementById(id);
    const W = 720, H = 290, left = 72, right = 16, top = 24 + 14 * series.length, bottom = 40;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    const xs = [], ys = [];
    for (const s of series) {
      s.x.forEach(function (x, i) { if (finite(s.y[i])) { xs.push(x); ys.push(s.y[i]); } });
    }
    if (xs.length === 0) {
      make("text", {x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty"}, svg).textContent = "no data";
      return;
    }
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;  // a loop: long runs have 1e5+ points
    for (let i = 0; i < xs.length; ++i) {
      x0 = Math.min(x0, xs[i]); x1 = Math.max(x1, xs[i]); y0 = Math.min(y0, ys[i]); y1 = Math.max(y1, ys[i]);
    }
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 - y0 < 1e-12 * Math.max(1, Math.abs(y0))) { const pad = Math.abs(y0) * 0.05 || 1; y0 -= pad; y1 += pad; }
    const sx = function (x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
    const sy = function (y) { return top + (y1 - y) / (y1 - y0) * (H - top - bottom); };
    make("line", {x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: "axis"}, svg);
    make("line", {x1: left, y1: top, x2: left, y2: H - bottom, class: "axis"}, svg);
    for (const y of ticks(y0, y1, false)) {
      make("line", {x1: left, y1: sy(y), x2: W - right, y2: sy(y), class: "grid"}, svg);
      make("text", {x: left - 6, y: sy(y) + 4, "text-anchor": "end"}, svg).textContent = label(y);
    }
    for (const x of ticks(x0, x1, true)) {
      make("line", {x1: sx(x), y1: H - bottom, x2: sx(x), y2: H - bottom + 4, class: "axis"}, svg);
      make("text", {x: sx(x), y: H - bottom + 16, "text-anchor": "middle"}, svg).textContent = label(x);
    }
    make("text", {x: (left + W - right) / 2, y: H - 6, "text-anchor": "middle"}, svg).textContent = "step";
    make("text", {x: 8, y: 14}, svg).textContent = yName;
    series.forEach(function (s, index) {
      let d = "", pen = false, points = 0;
      s.x.forEach(function (x, i) {
        if (!finite(s.y[i])) { pen = false; return; }  // a gap where a value is missing
        d += (pen ? " L" : " M") + sx(x).toFixed(2) + " " + sy(s.y[i]).toFixed(2);
        pen = true;
        ++points;
      });
      make("path", {d: d.trim(), class: "series", "data-series": s.name, "data-points": points,
                    stroke: s.colour, fill: "none", "stroke-width": 1.6}, svg);
      if (s.markers) {
        s.x.forEach(function (x, i) {
          if (finite(s.y[i])) make("circle", {cx: sx(x), cy: sy(s.y[i]), r: 3, fill: s.colour, class: "marker"}, svg);
        });
      }
      const lx = W - right - 150, ly = 10 + 14 * index;
      make("line", {x1: lx, y1: ly, x2: lx + 18, y2: ly, stroke: s.colour, "stroke-width": 3}, svg);
      make("text", {x: lx + 24, y: ly + 4}, svg).textContent = s.label;
    });
  }
  const steps = data.steps, val = data.validation;
  const lossSeries = [{name: "train-loss", label: "training", x: steps.step, y: steps.loss, colour: "#1f77b4"}];
  if (val.step.length > 0) {
    lossSeries.push({name: "val-loss", label: "validation", x: val.step, y: val.loss, colour: "#ff7f0e",
                     markers: true});
  }
  chart("chart-loss", lossSeries, "loss (nats/token)");
  chart("chart-lr", [{name: "lr", label: "learning rate", x: steps.step, y: steps.lr, colour: "#2ca02c"}],
        "learning rate");
  chart("chart-speed", [{name: "tokens-per-s", label: "tokens/s", x: steps.step, y: steps.tokens_per_s,
                         colour: "#9467bd"}], "tokens/s");
  const memory = [{name: "rss-peak", label: "process peak RSS", x: steps.step, y: steps.rss_peak_mib,
                   colour: "#8c564b"}];
  if (steps.alloc_peak_mib.some(function (v) { return finite(v) && v > 0; })) {
    memory.push({name: "alloc-peak", label: "allocator peak", x: steps.step, y: steps.alloc_peak_mib,
                 colour: "#d62728"});
  }
  chart("chart-memory", memory, "MiB (high-water mark)");
  document.body.setAttribute("data-rendered", "yes");
})();
)JS";

constexpr const char* kStyle = R"CSS(
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.summary span { display: inline-block; margin: 0 1.5em 0.5em 0; } .summary b { font-size: 1.2em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1em; }
figure { margin: 0; border: 1px solid #e4e4e4; border-radius: 4px; padding: 0.5em; }
figcaption { font-weight: 600; margin-bottom: 0.3em; }
svg.chart { width: 100%; height: auto; font-size: 11px; }
svg .axis { stroke: #333; } svg .grid { stroke: #eee; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { padding: 2px 10px; text-align: left; }
table.kv th { font-weight: normal; color: #555; } tr:nth-child(even) { background: #f6f6f6; }
.columns { display: flex; gap: 3em; flex-wrap: wrap; } .warn { color: #a15c00; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
)CSS";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

RunReport read_run_report(const std::string& proj_dir) {
  RunReport report;
  report.proj_dir = proj_dir;
  std::error_code error;
  RWKV_CHECK(fs::is_directory(proj_dir, error), "report: run directory '", proj_dir,
             "' does not exist (give the proj_dir of a training run)");
  const std::string metrics = (fs::path(proj_dir) / "metrics.jsonl").string();
  RWKV_CHECK(fs::exists(metrics, error), "report: ", metrics,
             " is missing: is this the proj_dir of a run that has taken a step?");
  read_metrics(metrics, report);
  RWKV_CHECK(!report.steps.empty(), "report: ", metrics, " has no training records");

  std::vector<std::string> problems;
  const std::vector<CheckpointEntry> entries = list_checkpoints(proj_dir, &problems);
  for (const std::string& problem : problems) report.warnings.push_back("unusable checkpoint: " + problem);
  for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
    ReportCheckpoint checkpoint;
    checkpoint.name = fs::path(entry->path).filename().string();
    checkpoint.step = entry->global_step;
    struct stat info {};
    if (::stat(entry->path.c_str(), &info) == 0) {
      checkpoint.bytes = static_cast<uint64_t>(info.st_size);
      checkpoint.modified_utc = utc_time(info.st_mtime);
    }
    report.checkpoints.push_back(checkpoint);
  }

  const std::string run_json = (fs::path(proj_dir) / "run.json").string();
  if (fs::exists(run_json, error)) read_run_info(run_json, report);
  if (report.config.empty() && !entries.empty()) {  // runs from before run.json: the newest checkpoint's config
    report.config = ini_pairs(read_train_state(entries.front().path).config_ini);
    report.config_source = entries.front().path;
  }
  if (report.config.empty()) report.warnings.push_back("no configuration found (no run.json and no checkpoint)");
  return report;
}

std::string render_report_html(const RunReport& report) {
  const std::vector<StepRecord>& steps = report.steps;
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
          "script-src 'unsafe-inline'; img-src data:\">\n"
       << "<title>rwkv report: " << html_escape(report.proj_dir) << "</title>\n<style>" << kStyle << "</style>\n"
       << "</head>\n<body>\n<h1>RWKV training report: <code>" << html_escape(report.proj_dir) << "</code></h1>\n";

  // Headline numbers.
  const StepRecord& last = steps.back();
  double tokens_per_second = 0;
  int64_t measured = 0, skipped = 0, rss_peak = 0, allocator_peak = 0;
  for (const StepRecord& step : steps) {
    if (std::isfinite(step.tokens_per_second)) {
      tokens_per_second += step.tokens_per_second;
      ++measured;
    }
    skipped += step.skipped ? 1 : 0;
    rss_peak = std::max(rss_peak, step.rss_peak_bytes);
    allocator_peak = std::max(allocator_peak, step.allocator_peak_bytes);
  }
  char text[64];
  html << "<p class=\"summary\">";
  auto fact = [&](const std::string& name, const std::string& value) {
    html << "<span>" << html_escape(name) << " <b>" << html_escape(value) << "</b></span>";
  };
  fact("steps", std::to_string(steps.front().step) + " to " + std::to_string(last.step));
  std::snprintf(text, sizeof(text), "%.4f", last.loss);
  fact("last training loss", text);
  if (!report.validations.empty()) {
    const ValidationRecord& val = report.validations.back();
    std::snprintf(text, sizeof(text), "%.4f (ppl %.3f, step %lld)", val.loss, val.perplexity,
                  static_cast<long long>(val.step));
    fact("last validation loss", text);
  }
  if (measured > 0) {
    std::snprintf(text, sizeof(text), "%.0f", tokens_per_second / static_cast<double>(measured));
    fact("mean tokens/s", text);
  }
  if (rss_peak > 0) fact("peak RSS", human_bytes(static_cast<uint64_t>(rss_peak)));
  if (allocator_peak > 0) fact("allocator peak", human_bytes(static_cast<uint64_t>(allocator_peak)));
  if (skipped > 0) fact("skipped steps", std::to_string(skipped));
  html << "</p>\n";

  if (!report.warnings.empty()) {
    html << "<h2>Warnings</h2>\n<ul class=\"warn\">\n";
    for (const std::string& warning : report.warnings) html << "<li>" << html_escape(warning) << "</li>\n";
    html << "</ul>\n";
  }

  html << "<h2>Curves</h2>\n<div class=\"charts\">\n";
  for (const auto& [id, caption] : {std::pair{"chart-loss", "Loss (training and validation)"},
                                    std::pair{"chart-lr", "Learning rate"}, std::pair{"chart-speed", "Throughput"},
                                    std::pair{"chart-memory", "Memory"}}) {
    html << "<figure><figcaption>" << caption << "</figcaption><svg class=\"chart\" id=\"" << id
         << "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"></svg></figure>\n";
  }
  html << "</div>\n<noscript><p class=\"warn\">The charts are drawn by the page's script.</p></noscript>\n";

  html << "<div class=\"columns\">\n<div>\n<h2>Run and hardware</h2>\n";
  if (report.run.empty()) {
    html << "<p>No run.json in this run directory (written by training runs since it was added).</p>\n";
  } else {
    table(html, report.run);
  }
  html << "<h2>Checkpoints</h2>\n";
  if (report.checkpoints.empty()) {
    html << "<p>No checkpoints.</p>\n";
  } else {
    html << "<table id=\"checkpoints\">\n<tr><th>name</th><th>step</th><th>size</th><th>modified</th></tr>\n";
    for (const ReportCheckpoint& checkpoint : report.checkpoints) {
      html << "<tr><td>" << html_escape(checkpoint.name) << "</td><td class=\"num\">" << checkpoint.step
           << "</td><td class=\"num\">" << html_escape(human_bytes(checkpoint.bytes)) << "</td><td>"
           << html_escape(checkpoint.modified_utc) << "</td></tr>\n";
    }
    html << "</table>\n";
  }
  html << "</div>\n<div>\n<h2>Configuration</h2>\n";
  if (!report.config_source.empty()) html << "<p>from <code>" << html_escape(report.config_source) << "</code></p>\n";
  table(html, report.config);
  html << "</div>\n</div>\n";

  // The data the script draws; '<' is escaped inside it so no text from a file can end the script element.
  auto mib = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  std::string data = "{\"steps\":{\"step\":";
  data += json_array(steps, [](const StepRecord& r) { return static_cast<double>(r.step); });
  data += ",\"loss\":" + json_array(steps, [](const StepRecord& r) { return r.loss; });
  data += ",\"lr\":" + json_array(steps, [](const StepRecord& r) { return r.lr; });
  data += ",\"tokens_per_s\":" + json_array(steps, [](const StepRecord& r) { return r.tokens_per_second; });
  data += ",\"rss_peak_mib\":" + json_array(steps, [&](const StepRecord& r) { return mib(r.rss_peak_bytes); });
  data += ",\"alloc_peak_mib\":" + json_array(steps, [&](const StepRecord& r) { return mib(r.allocator_peak_bytes); });
  data += "},\"validation\":{\"step\":";
  data += json_array(report.validations, [](const ValidationRecord& r) { return static_cast<double>(r.step); });
  data += ",\"loss\":" + json_array(report.validations, [](const ValidationRecord& r) { return r.loss; });
  data += "},\"proj_dir\":" + json::quote(report.proj_dir) + "}";
  html << "<script type=\"application/json\" id=\"run-data\">" << script_safe(data) << "</script>\n<script>"
       << kScript << "</script>\n</body>\n</html>\n";
  return html.str();
}

}  // namespace rwkv
