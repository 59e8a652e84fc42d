// Dense bf16 matmul peaks of common GPUs, for model FLOPs utilisation (MFU). Unknown GPUs get no MFU rather
// than a made-up one.
#pragma once

#include <optional>
#include <string>

namespace rwkv {

// Peak dense bf16 TFLOP/s (with fp32 accumulation) from the vendor's datasheet, matched by device name.
std::optional<double> bf16_peak_tflops(const std::string& device_name);

// MFU = 6 · non-embedding parameters · tokens/s / peak (the convention of ../shared/GPU.md).
inline double model_flops_utilisation(double non_embedding_parameters, double tokens_per_second, double peak_tflops) {
  return 6.0 * non_embedding_parameters * tokens_per_second / (peak_tflops * 1e12);
}

}  // namespace rwkv
