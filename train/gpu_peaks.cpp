#include "train/gpu_peaks.h"

#include <utility>
#include <vector>

namespace rwkv {

std::optional<double> bf16_peak_tflops(const std::string& device_name) {
  // Most specific names first: "H100 PCIe" before "H100".
  static const std::vector<std::pair<const char*, double>> peaks = {
      {"H200", 989.0},    {"H100 PCIe", 756.0}, {"H100 NVL", 835.0}, {"H100", 989.0},  {"GH200", 989.0},
      {"B200", 2250.0},   {"A100", 312.0},      {"A800", 312.0},     {"A6000", 155.0}, {"L40S", 362.0},
      {"L40", 181.0},     {"A10G", 70.0},       {"A10", 125.0},      {"L4", 121.0},    {"RTX 4090", 165.0},
      {"RTX 3090", 71.0},
  };
  for (const auto& [name, tflops] : peaks) {
    if (device_name.find(name) != std::string::npos) return tflops;
  }
  return std::nullopt;
}

}  // namespace rwkv
