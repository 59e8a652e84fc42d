#include "data/token_dtype.h"

#include <limits>

#include "core/error.h"

namespace rwkv::data {

std::size_t itemsize(TokenDtype dtype) {
  switch (dtype) {
    case TokenDtype::uint8:
    case TokenDtype::int8: return 1;
    case TokenDtype::int16:
    case TokenDtype::uint16: return 2;
    case TokenDtype::int32:
    case TokenDtype::uint32: return 4;
    case TokenDtype::int64: return 8;
  }
  RWKV_FAIL("itemsize: invalid TokenDtype ", static_cast<int>(dtype));
}

const char* dtype_name(TokenDtype dtype) {
  switch (dtype) {
    case TokenDtype::uint8: return "uint8";
    case TokenDtype::int8: return "int8";
    case TokenDtype::int16: return "int16";
    case TokenDtype::int32: return "int32";
    case TokenDtype::int64: return "int64";
    case TokenDtype::uint16: return "uint16";
    case TokenDtype::uint32: return "uint32";
  }
  RWKV_FAIL("dtype_name: invalid TokenDtype ", static_cast<int>(dtype));
}

std::uint64_t max_token_id(TokenDtype dtype) {
  switch (dtype) {
    case TokenDtype::uint8: return std::numeric_limits<std::uint8_t>::max();
    case TokenDtype::int8: return std::numeric_limits<std::int8_t>::max();
    case TokenDtype::int16: return std::numeric_limits<std::int16_t>::max();
    case TokenDtype::int32: return std::numeric_limits<std::int32_t>::max();
    case TokenDtype::int64: return std::numeric_limits<std::int64_t>::max();
    case TokenDtype::uint16: return std::numeric_limits<std::uint16_t>::max();
    case TokenDtype::uint32: return std::numeric_limits<std::uint32_t>::max();
  }
  RWKV_FAIL("max_token_id: invalid TokenDtype ", static_cast<int>(dtype));
}

std::uint8_t binidx_code(TokenDtype dtype) {
  switch (dtype) {
    case TokenDtype::uint8: return 1;
    case TokenDtype::int8: return 2;
    case TokenDtype::int16: return 3;
    case TokenDtype::int32: return 4;
    case TokenDtype::int64: return 5;
    case TokenDtype::uint16: return 8;
    case TokenDtype::uint32: break;
  }
  RWKV_FAIL("binidx has no dtype code for ", dtype_name(dtype), "; use uint8, int8, int16, uint16, int32 or int64");
}

std::optional<TokenDtype> dtype_from_binidx_code(std::uint8_t code) {
  switch (code) {
    case 1: return TokenDtype::uint8;
    case 2: return TokenDtype::int8;
    case 3: return TokenDtype::int16;
    case 4: return TokenDtype::int32;
    case 5: return TokenDtype::int64;
    case 8: return TokenDtype::uint16;
    default: return std::nullopt;
  }
}

TokenDtype token_dtype_for_vocab(std::uint64_t vocab_size) {
  return vocab_size < 65500 ? TokenDtype::uint16 : TokenDtype::int32;
}

TokenDtype parse_token_dtype(const std::string& name) {
  for (TokenDtype dtype : {TokenDtype::uint8, TokenDtype::int8, TokenDtype::int16, TokenDtype::int32, TokenDtype::int64,
                           TokenDtype::uint16, TokenDtype::uint32}) {
    if (name == dtype_name(dtype)) return dtype;
  }
  RWKV_FAIL("unknown token dtype '", name, "'; expected uint8, int8, int16, uint16, int32, uint32 or int64");
}

}  // namespace rwkv::data
