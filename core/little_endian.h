// Little-endian integers at any (unaligned) address of a file image: binidx and .npy headers, zip records, the
// checkpoint seal. Byte by byte, so the result does not depend on the host's byte order (compilers turn the
// loop into one load or store on little-endian hosts).
#pragma once

#include <cstdint>
#include <type_traits>

namespace rwkv {

template <typename T>
T load_le(const void* at) {
  static_assert(std::is_integral_v<T>, "load_le reads integers");
  using Unsigned = std::make_unsigned_t<T>;
  const auto* bytes = static_cast<const unsigned char*>(at);
  Unsigned value = 0;
  for (int i = static_cast<int>(sizeof(T)) - 1; i >= 0; --i) {
    value = static_cast<Unsigned>((static_cast<uint64_t>(value) << 8) | bytes[i]);
  }
  return static_cast<T>(value);
}

template <typename T>
void store_le(void* at, T value) {
  static_assert(std::is_integral_v<T>, "store_le writes integers");
  const auto bits = static_cast<std::make_unsigned_t<T>>(value);
  auto* bytes = static_cast<unsigned char*>(at);
  for (size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<unsigned char>(static_cast<uint64_t>(bits) >> (8 * i));
}

}  // namespace rwkv
