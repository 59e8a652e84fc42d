// TokenSource: one flat stream of token ids made of one or more shards (files), read by window.
//
// Every dataset type (binidx, .npy, raw text) opens into shards that point at memory holding token ids
// of one integer dtype: an mmap of the file for binidx/.npy/bytes, an in-memory id array for
// character-level text. The shards are concatenated in order; a window may cross shard boundaries.
// read() converts to int32 and never reads out of bounds; every error names the file and the offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/token_dtype.h"

namespace rwkv::data {

class CharVocab;

struct TokenShard {
  std::string path;  // the file the tokens come from (the .bin for binidx)
  TokenDtype dtype = TokenDtype::uint16;
  const std::byte* tokens = nullptr;       // first token, aligned to itemsize(dtype)
  std::uint64_t size = 0;                  // in tokens
  std::uint64_t begin = 0;                 // offset of the first token in the concatenated stream (set by TokenSource)
  std::optional<std::uint64_t> documents;  // when the format records them (binidx)
  std::shared_ptr<const void> owner;       // keeps the mapping or the id buffer alive
};

// Smallest and largest id in a source and the first offset of each.
struct TokenScan {
  std::int64_t min_id = 0;
  std::int64_t max_id = -1;  // -1 for an empty source
  std::uint64_t min_offset = 0;
  std::uint64_t max_offset = 0;
};

class TokenSource {
public:
  // kind: "binidx", "numpy", "utf-8" or "bytes". vocab_size: known for text sources (256 for bytes,
  // the number of distinct characters for utf-8); binidx and numpy leave it to the config.
  TokenSource(std::string kind, std::vector<TokenShard> shards, std::optional<std::uint64_t> vocab_size = {},
              std::shared_ptr<const CharVocab> char_vocab = nullptr);

  const std::string& kind() const { return kind_; }
  std::uint64_t size() const { return size_; }
  std::optional<std::uint64_t> vocab_size() const { return vocab_size_; }
  // The sum over shards, when every shard knows its count.
  std::optional<std::uint64_t> documents() const;
  // "uint16", or e.g. "mixed (uint16, int32)" when shards differ.
  std::string dtype_name() const;
  const std::vector<TokenShard>& shards() const { return shards_; }
  // Character-level text only (kind "utf-8"): decodes ids back to text. nullptr otherwise.
  const CharVocab* char_vocab() const { return char_vocab_.get(); }

  // Copies tokens [offset, offset + count) into out as int32. Throws when the window is out of bounds
  // or a token is negative or does not fit int32 (naming the file and the token's offset).
  void read(std::uint64_t offset, std::uint64_t count, std::int32_t* out) const;
  // Same, and also throws when a token is >= vocab_size. This is what the batch builder uses.
  void read_checked(std::uint64_t offset, std::uint64_t count, std::int32_t* out, std::uint64_t vocab_size) const;

  // "token 17 of /data/part1.bin (dataset offset 1041)": where a dataset offset lives, for messages.
  std::string describe_offset(std::uint64_t offset) const;

  // Scans every token (OpenMP-parallel, one pass over the data) for the smallest and largest id.
  // For a large dataset this reads it all from disk: meant for small data or an explicit check.
  TokenScan scan_tokens() const;
  // Largest id in the source (-1 when empty).
  std::int64_t scan_max_token() const { return scan_tokens().max_id; }
  // scan_tokens(), then throws naming file and offset of the first offending token when any id is
  // negative or >= vocab_size. Returns the scan. The trainer can run this before training on small data.
  TokenScan check_vocab(std::uint64_t vocab_size) const;

private:
  std::size_t shard_index(std::uint64_t offset) const;
  void read_limited(std::uint64_t offset, std::uint64_t count, std::int32_t* out, std::uint64_t limit,
                    bool limit_is_vocab) const;

  std::string kind_;
  std::vector<TokenShard> shards_;
  std::uint64_t size_ = 0;
  std::optional<std::uint64_t> vocab_size_;
  std::shared_ptr<const CharVocab> char_vocab_;
};

}  // namespace rwkv::data
