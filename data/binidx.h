// Reading Megatron / GPT-NeoX "binidx" token data (spec §5.1): <prefix>.idx describes the sequences,
// <prefix>.bin holds their tokens back to back. The .bin is memory-mapped and used as one flat stream;
// both files are validated against each other on open.
#pragma once

#include <cstdint>
#include <string>

#include "data/token_dtype.h"
#include "data/token_source.h"

namespace rwkv::data {

// What a valid .idx header says.
struct BinidxHeader {
  TokenDtype dtype = TokenDtype::uint16;
  std::uint64_t sequences = 0;     // N: entries of sizes[] and pointers[]
  std::uint64_t doc_idx_size = 0;  // M: entries of doc_idx[]
};

inline constexpr std::uint64_t kBinidxHeaderBytes = 34;
inline constexpr char kBinidxMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};

// "data/x.bin", "data/x.idx" and "data/x" all name the prefix "data/x".
std::string binidx_prefix(const std::string& path);

// Opens <prefix>.idx and <prefix>.bin and checks: magic, version 1, an integer dtype code, the .idx
// length against N and M, sizes >= 0, pointers = prefix sums of size·itemsize starting at 0, doc_idx
// non-decreasing and <= N, and the .bin length = the bytes the index describes. Each failure is an
// rwkv::Error naming the file and the problem. The shard's documents = M − 1 (Megatron's count; N when
// M is 0). Cost: one pass over the .idx (parallel), none over the .bin.
TokenShard open_binidx_shard(const std::string& prefix);

}  // namespace rwkv::data
