#include "core/rng.h"

#include <cmath>
#include <numbers>

namespace rwkv {

std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return {c0, c1, c2, c3};
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
