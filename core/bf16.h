// bfloat16 <-> float conversion: round-to-nearest-even, NaN stays NaN (quiet), infinities preserved.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace rwkv {

inline BFloat16 float_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return BFloat16{static_cast<uint16_t>((bits >> 16) | 0x0040u)};  // quiet NaN, keep the sign
  }
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return BFloat16{static_cast<uint16_t>((bits + rounding_bias) >> 16)};
}

inline float bf16_to_float(BFloat16 value) {
  const uint32_t bits = static_cast<uint32_t>(value.bits) << 16;
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

// Bulk conversions (OpenMP over large arrays).
void floats_to_bf16(const float* in, BFloat16* out, int64_t count);
void bf16_to_floats(const BFloat16* in, float* out, int64_t count);

}  // namespace rwkv
