// Reading NumPy .npy files of token ids, memory-mapped (RWKV-LM's data_type "numpy").
// Accepted: a 1-D, C-order, little-endian array of uint8, int8, int16, uint16, int32, uint32 or int64
// (format versions 1.0, 2.0, 3.0). Anything else is an rwkv::Error naming the file and the problem.
#pragma once

#include <cstdint>
#include <string>

#include "data/token_dtype.h"
#include "data/token_source.h"

namespace rwkv::data {

struct NpyHeader {
  TokenDtype dtype = TokenDtype::uint16;
  std::uint64_t length = 0;       // elements
  std::uint64_t data_offset = 0;  // bytes from the start of the file to the first element
};

// Parses and checks the header of a .npy file held in memory (path is for messages).
NpyHeader parse_npy_header(const std::byte* bytes, std::uint64_t size, const std::string& path);

TokenShard open_npy_shard(const std::string& path);

}  // namespace rwkv::data
