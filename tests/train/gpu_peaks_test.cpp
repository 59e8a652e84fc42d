#include <gtest/gtest.h>

#include "train/gpu_peaks.h"
#include "train/model/model_config.h"

namespace rwkv {
namespace {

TEST(TrainGpuPeaks, KnownGpusAndTheMfuConvention) {
  EXPECT_EQ(bf16_peak_tflops("NVIDIA H100 80GB HBM3"), 989.0);
  EXPECT_EQ(bf16_peak_tflops("NVIDIA H100 PCIe"), 756.0);
  EXPECT_EQ(bf16_peak_tflops("NVIDIA A100-SXM4-80GB"), 312.0);
  EXPECT_FALSE(bf16_peak_tflops("Some Future GPU").has_value());
  // ../shared/GPU.md: the official 169M run at 156K tokens/s is 122 model TFLOP/s, counting 6 x (parameters -
  // embedding) x tokens.
  ModelConfig config;
  config.n_layer = 12;
  config.n_embd = 768;
  config.vocab_size = 50277;
  const double non_embedding = static_cast<double>(config.parameter_count() - 50277 * 768);
  EXPECT_NEAR(model_flops_utilisation(non_embedding, 156000, 1000.0) * 1000.0, 122.0, 1.0);
}

}  // namespace
}  // namespace rwkv
