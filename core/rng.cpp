#include "core/rng.h"

#include "core/philox.h"

#include <cmath>
#include <numbers>

namespace rwkv {

std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter) {
  const PhiloxBlock block = philox4x32_block(seed, counter);
  return {block.lanes[0], block.lanes[1], block.lanes[2], block.lanes[3]};
}

uint64_t Generator::take_blocks(int64_t numel) {
  const uint64_t first = offset_;
  offset_ += static_cast<uint64_t>((numel + 3) / 4);
  return first;
}

uint64_t Generator::next_u64() {
  const auto block = philox4x32(seed_, take_blocks(4));
  return (static_cast<uint64_t>(block[0]) << 32) | block[1];
}

void Generator::uniform_(Tensor& tensor, float low, float high) {
  RWKV_CHECK(tensor.dtype() == DType::f32 && tensor.device().is_cpu() && tensor.is_contiguous(),
             "Generator::uniform_: expects a contiguous f32 CPU tensor, got ", tensor.describe());
  float* out = tensor.data<float>();
  const int64_t n = tensor.numel();
  const uint64_t base = take_blocks(n);
  const float span = high - low;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t block = 0; block < (n + 3) / 4; ++block) {
    const auto bits = philox4x32(seed_, base + static_cast<uint64_t>(block));
    for (int64_t lane = 0; lane < 4 && block * 4 + lane < n; ++lane) {
      out[block * 4 + lane] = low + span * uniform_from_bits(bits[static_cast<size_t>(lane)]);
    }
  }
}

void Generator::normal_(Tensor& tensor, float mean, float stddev) {
  RWKV_CHECK(tensor.dtype() == DType::f32 && tensor.device().is_cpu() && tensor.is_contiguous(),
             "Generator::normal_: expects a contiguous f32 CPU tensor, got ", tensor.describe());
  float* out = tensor.data<float>();
  const int64_t n = tensor.numel();
  const uint64_t base = take_blocks(n);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t block = 0; block < (n + 3) / 4; ++block) {
    const auto bits = philox4x32(seed_, base + static_cast<uint64_t>(block));
    double z[4];
    for (int pair = 0; pair < 2; ++pair) {  // Box-Muller: lanes (0,1) and (2,3) each give two normals
      const double u1 = (static_cast<double>(bits[2 * pair] >> 8) + 1.0) / 16777216.0;  // (0, 1]
      const double u2 = static_cast<double>(bits[2 * pair + 1] >> 8) / 16777216.0;      // [0, 1)
      const double radius = std::sqrt(-2.0 * std::log(u1));
      z[2 * pair] = radius * std::cos(2.0 * std::numbers::pi * u2);
      z[2 * pair + 1] = radius * std::sin(2.0 * std::numbers::pi * u2);
    }
    for (int64_t lane = 0; lane < 4 && block * 4 + lane < n; ++lane) {
      out[block * 4 + lane] = static_cast<float>(mean + stddev * z[lane]);
    }
  }
}

}  // namespace rwkv
