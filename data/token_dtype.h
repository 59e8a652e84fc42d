// Integer types a token stream can be stored in, with the binidx dtype codes of spec §5.1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace rwkv::data {

enum class TokenDtype { uint8, int8, int16, int32, int64, uint16, uint32 };

std::size_t itemsize(TokenDtype dtype);
const char* dtype_name(TokenDtype dtype);
// Largest token id the dtype can hold (ids are never negative).
std::uint64_t max_token_id(TokenDtype dtype);

// binidx .idx dtype codes: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16 (6 and 7 are floats).
// uint32 has no binidx code; binidx_code throws for it.
std::uint8_t binidx_code(TokenDtype dtype);
// std::nullopt for codes that are not integer token types (floats 6/7 and unknown codes).
std::optional<TokenDtype> dtype_from_binidx_code(std::uint8_t code);

// The dtype GPT-NeoX / Megatron preprocessing uses for a vocabulary: uint16 when vocab_size < 65500,
// else int32. The RWKV trainer reads both.
TokenDtype token_dtype_for_vocab(std::uint64_t vocab_size);

// "uint16" -> TokenDtype::uint16; throws naming the accepted names otherwise.
TokenDtype parse_token_dtype(const std::string& name);

// Calls fn(T{}) with T the C++ type of dtype, so one template serves every dtype.
template <typename Fn>
decltype(auto) with_token_type(TokenDtype dtype, Fn&& fn) {
  switch (dtype) {
    case TokenDtype::uint8: return fn(std::uint8_t{});
    case TokenDtype::int8: return fn(std::int8_t{});
    case TokenDtype::int16: return fn(std::int16_t{});
    case TokenDtype::int32: return fn(std::int32_t{});
    case TokenDtype::int64: return fn(std::int64_t{});
    case TokenDtype::uint16: return fn(std::uint16_t{});
    case TokenDtype::uint32: break;
  }
  return fn(std::uint32_t{});
}

}  // namespace rwkv::data
