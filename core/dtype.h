// Element types a tensor can hold: fp32 and bf16 for values, integers for token ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rwkv {

// f64 exists for gradient checks (finite differences in double precision) and CPU reference math.
enum class DType : uint8_t { f32, bf16, i32, i64, u16, f64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
bool is_floating(DType dtype);
DType parse_dtype(const std::string& name);  // "f32", "bf16", "i32", "i64", "u16", "f64"

struct BFloat16 {
  uint16_t bits;
};

// Maps a C++ element type to its DType, for typed access such as Tensor::data<float>().
template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct DTypeOf<uint16_t> {
  static constexpr DType value = DType::u16;
};

}  // namespace rwkv
