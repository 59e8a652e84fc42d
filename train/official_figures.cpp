#include "train/official_figures.h"

namespace rwkv {

const std::vector<OfficialWorkload>& official_workloads() {
  constexpr auto none = std::nullopt;
  static const std::vector<OfficialWorkload> workloads = {
      {"169M B16", 12, 768, 16, 0, 156000, 122, 22.6, 390000, none, 22.6, none, none,
       ">= 390K tok/s (2.5x), peak <= 22.6 GiB"},
      {"169M B16 grad_cp", 12, 768, 16, 1, none, none, none, none, none, none, 0.5, 0.35,
       "peak <= 1/2 of 169M B16's, < 35% slower"},
      {"169M B32", 12, 768, 32, 0, 172000, 135, 42.2, none, none, none, none, none, ""},
      {"430M B16", 24, 1024, 16, 0, 81000, 184, 39.2, 162000, none, none, none, none, ">= 162K tok/s (2x)"},
      {"1.5B B8", 24, 2048, 8, 0, 33400, 283, 51.2, none, 0.55 * kH100MeasuredBf16Tflops, none, none, none,
       ">= 55% MFU (439 model TFLOP/s)"},
  };
  return workloads;
}

double model_tflops(const TrainBenchmarkReport& report) {
  return 6.0 * static_cast<double>(report.non_embedding_parameters) * report.tokens_per_second / 1e12;
}

std::optional<bool> goal_met(const OfficialWorkload& w, const TrainBenchmarkReport& r,
                             const TrainBenchmarkReport* previous) {
  std::optional<bool> met;
  const auto require = [&met](bool ok) { met = met.value_or(true) && ok; };
  const double peak_gib = static_cast<double>(r.peak_memory_bytes) / static_cast<double>(int64_t{1} << 30);
  if (w.goal_tokens_per_second) require(r.tokens_per_second >= *w.goal_tokens_per_second);
  if (w.goal_model_tflops) require(model_tflops(r) >= *w.goal_model_tflops);
  if (w.goal_peak_gib) require(peak_gib <= *w.goal_peak_gib);
  if (w.goal_peak_fraction_of_previous || w.goal_slowdown_of_previous) {
    if (previous == nullptr) return std::nullopt;
    if (w.goal_peak_fraction_of_previous) {
      require(static_cast<double>(r.peak_memory_bytes) <=
              *w.goal_peak_fraction_of_previous * static_cast<double>(previous->peak_memory_bytes));
    }
    if (w.goal_slowdown_of_previous) {
      require(r.tokens_per_second >= (1.0 - *w.goal_slowdown_of_previous) * previous->tokens_per_second);
    }
  }
  return met;
}

}  // namespace rwkv
