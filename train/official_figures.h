// The official RWKV-LM v4neo training step on one H100 80GB HBM3 (bf16, its JIT-compiled WKV kernel,
// TorchScript, fp32 Adam; ctx 1024), measured 2026-11-22 (../shared/GPU.md): the reference `rwkv bench train
// --official` compares against, with this project's goals for each workload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/train_benchmark.h"

namespace rwkv {

struct OfficialWorkload {
  std::string name;  // "169M B16"
  int64_t n_layer, n_embd, micro_bsz, grad_cp;
  // RWKV-LM's figures; none for workloads it was not measured on (grad_cp rows compare with their plain row).
  std::optional<double> tokens_per_second, model_tflops, peak_gib;
  // This project's goal: tokens/s, or model TFLOP/s where the goal is a utilisation, and a peak memory bound.
  std::optional<double> goal_tokens_per_second, goal_model_tflops, goal_peak_gib;
  // Activation checkpointing's goal is relative to the plain workload before it: at most this fraction of its
  // peak memory, at most this fraction slower.
  std::optional<double> goal_peak_fraction_of_previous, goal_slowdown_of_previous;
  std::string goal;  // the goal in words, for the table
};

inline constexpr int64_t kOfficialCtxLen = 1024;
inline constexpr int64_t kOfficialVocab = 50277;
inline constexpr double kH100MeasuredBf16Tflops = 798.0;  // dense bf16 matmul, measured on the host (GPU.md)
inline constexpr const char* kOfficialDevice = "H100";    // figures hold for device names containing this

const std::vector<OfficialWorkload>& official_workloads();

// 6 · non-embedding parameters · tokens/s in TFLOP/s (GPU.md's "model TFLOP/s").
double model_tflops(const TrainBenchmarkReport& report);

// Whether `report` meets the workload's goal; `previous` is the report of the workload listed before it (for
// goals relative to it). nullopt when the workload has no goal, or needs `previous` and has none.
std::optional<bool> goal_met(const OfficialWorkload& workload, const TrainBenchmarkReport& report,
                             const TrainBenchmarkReport* previous);

}  // namespace rwkv
