#include "data/token_source.h"

#include <algorithm>
#include <limits>
#include <set>
#include <type_traits>

#include "core/error.h"
#include "data/char_vocab.h"

namespace rwkv::data {
namespace {

constexpr std::uint64_t kInt32Limit = std::uint64_t{1} << 31;

// Copies n tokens to int32 and returns the index of the first token that is negative or >= limit
// (n when all are fine). Ids are compared as unsigned values of the same width, so a negative id wraps
// to a huge value and fails the same single comparison; the common case (uint16 data, vocab >= 65536)
// needs no comparison at all. Both loops vectorise.
template <typename T>
std::uint64_t convert_tokens(const T* src, std::uint64_t n, std::int32_t* out, std::uint64_t limit) {
  using U = std::make_unsigned_t<T>;
  const std::uint64_t type_limit = std::uint64_t(std::numeric_limits<T>::max()) + 1;
  const std::uint64_t bound = std::min({limit, kInt32Limit, type_limit});
  if (bound > std::numeric_limits<U>::max()) {  // every value of T is a valid id
    for (std::uint64_t i = 0; i < n; ++i) out[i] = static_cast<std::int32_t>(src[i]);
    return n;
  }
  const U typed_bound = static_cast<U>(bound);
  bool bad = false;
  for (std::uint64_t i = 0; i < n; ++i) {
    const U value = static_cast<U>(src[i]);
    out[i] = static_cast<std::int32_t>(value);
    bad |= value >= typed_bound;
  }
  if (!bad) return n;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (static_cast<U>(src[i]) >= typed_bound) return i;
  }
  return n;
}

template <typename T>
std::int64_t token_at(const TokenShard& shard, std::uint64_t local) {
  return static_cast<std::int64_t>(reinterpret_cast<const T*>(shard.tokens)[local]);
}

std::int64_t token_value(const TokenShard& shard, std::uint64_t local) {
  return with_token_type(shard.dtype, [&](auto tag) { return token_at<decltype(tag)>(shard, local); });
}

}  // namespace

TokenSource::TokenSource(std::string kind, std::vector<TokenShard> shards, std::optional<std::uint64_t> vocab_size,
                         std::shared_ptr<const CharVocab> char_vocab)
    : kind_(std::move(kind)), shards_(std::move(shards)), vocab_size_(vocab_size), char_vocab_(std::move(char_vocab)) {
  RWKV_CHECK(!shards_.empty(), "token source (", kind_, "): no files");
  for (TokenShard& shard : shards_) {
    RWKV_CHECK(shard.size == 0 || shard.tokens != nullptr, "token source: shard ", shard.path, " has no data");
    RWKV_CHECK(reinterpret_cast<std::uintptr_t>(shard.tokens) % itemsize(shard.dtype) == 0, "token source: tokens of ",
               shard.path, " are not aligned to ", itemsize(shard.dtype), " bytes");
    shard.begin = size_;
    size_ += shard.size;
  }
}

std::optional<std::uint64_t> TokenSource::documents() const {
  std::uint64_t total = 0;
  for (const TokenShard& shard : shards_) {
    if (!shard.documents) return std::nullopt;
    total += *shard.documents;
  }
  return total;
}

std::string TokenSource::dtype_name() const {
  std::set<std::string> names;
  std::string listed;
  for (const TokenShard& shard : shards_) {
    if (names.insert(data::dtype_name(shard.dtype)).second) {
      listed += (listed.empty() ? "" : ", ") + std::string(data::dtype_name(shard.dtype));
    }
  }
  return names.size() == 1 ? listed : "mixed (" + listed + ")";
}

std::size_t TokenSource::shard_index(std::uint64_t offset) const {
  // The last shard whose begin <= offset; empty shards are skipped because a later shard has the same begin.
  const auto after = std::upper_bound(shards_.begin(), shards_.end(), offset,
                                      [](std::uint64_t value, const TokenShard& shard) { return value < shard.begin; });
  return static_cast<std::size_t>(after - shards_.begin()) - 1;
}

std::string TokenSource::describe_offset(std::uint64_t offset) const {
  if (offset >= size_) return detail::concat("dataset offset ", offset, " (past the end, ", size_, " tokens)");
  const TokenShard& shard = shards_[shard_index(offset)];
  if (shards_.size() == 1) return detail::concat("token offset ", offset, " of ", shard.path);
  return detail::concat("token offset ", offset - shard.begin, " of ", shard.path, " (dataset offset ", offset, ")");
}

void TokenSource::read(std::uint64_t offset, std::uint64_t count, std::int32_t* out) const {
  read_limited(offset, count, out, kInt32Limit, false);
}

void TokenSource::read_checked(std::uint64_t offset, std::uint64_t count, std::int32_t* out,
                               std::uint64_t vocab_size) const {
  read_limited(offset, count, out, vocab_size, true);
}

void TokenSource::read_limited(std::uint64_t offset, std::uint64_t count, std::int32_t* out, std::uint64_t limit,
                               bool limit_is_vocab) const {
  RWKV_CHECK(count <= size_ && offset <= size_ - count, "read of ", count, " tokens at offset ", offset,
             " is past the end of the dataset (", size_, " tokens, first file ", shards_.front().path, ")");
  std::size_t index = count > 0 ? shard_index(offset) : 0;
  while (count > 0) {
    const TokenShard& shard = shards_[index];
    const std::uint64_t local = offset - shard.begin;
    const std::uint64_t n = std::min(count, shard.size - local);
    const std::uint64_t first_bad = with_token_type(shard.dtype, [&](auto tag) {
      using T = decltype(tag);
      return convert_tokens(reinterpret_cast<const T*>(shard.tokens) + local, n, out, limit);
    });
    if (first_bad < n) {
      const std::int64_t value = token_value(shard, local + first_bad);
      const std::string where = describe_offset(offset + first_bad);
      if (value < 0) RWKV_FAIL("negative token id ", value, " at ", where);
      if (limit_is_vocab && static_cast<std::uint64_t>(value) >= limit) {
        RWKV_FAIL("token id ", value, " at ", where, " is >= vocab_size ", limit,
                  " (the data was tokenized with a larger vocabulary than the model has)");
      }
      RWKV_FAIL("token id ", value, " at ", where, " does not fit int32");
    }
    out += n;
    offset += n;
    count -= n;
    ++index;
  }
}

namespace {

struct BlockRange {
  std::int64_t min_id;
  std::int64_t max_id;
};

template <typename T>
BlockRange block_range(const T* tokens, std::uint64_t n) {
  T low = std::numeric_limits<T>::max();
  T high = std::numeric_limits<T>::lowest();
  for (std::uint64_t i = 0; i < n; ++i) {
    low = std::min(low, tokens[i]);
    high = std::max(high, tokens[i]);
  }
  return {static_cast<std::int64_t>(low), static_cast<std::int64_t>(high)};
}

}  // namespace

TokenScan TokenSource::scan_tokens() const {
  // Per-block extremes in parallel, then the first block holding each extreme is searched for its offset.
  constexpr std::uint64_t kBlock = std::uint64_t{1} << 20;
  struct Block {
    std::size_t shard;
    std::uint64_t local;
    std::uint64_t n;
  };
  std::vector<Block> blocks;
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    for (std::uint64_t local = 0; local < shards_[s].size; local += kBlock) {
      blocks.push_back({s, local, std::min(kBlock, shards_[s].size - local)});
    }
  }
  std::vector<BlockRange> ranges(blocks.size());
  const auto block_count = static_cast<std::int64_t>(blocks.size());
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t b = 0; b < block_count; ++b) {
    const Block& block = blocks[static_cast<std::size_t>(b)];
    const TokenShard& shard = shards_[block.shard];
    ranges[static_cast<std::size_t>(b)] = with_token_type(shard.dtype, [&](auto tag) {
      using T = decltype(tag);
      return block_range(reinterpret_cast<const T*>(shard.tokens) + block.local, block.n);
    });
  }
  TokenScan scan;
  if (blocks.empty()) return scan;
  std::size_t min_block = 0;
  std::size_t max_block = 0;
  for (std::size_t b = 1; b < blocks.size(); ++b) {
    if (ranges[b].min_id < ranges[min_block].min_id) min_block = b;
    if (ranges[b].max_id > ranges[max_block].max_id) max_block = b;
  }
  scan.min_id = ranges[min_block].min_id;
  scan.max_id = ranges[max_block].max_id;
  auto first_offset_of = [&](std::size_t b, std::int64_t value) {
    const Block& block = blocks[b];
    const TokenShard& shard = shards_[block.shard];
    std::uint64_t i = 0;
    while (token_value(shard, block.local + i) != value) ++i;
    return shard.begin + block.local + i;
  };
  scan.min_offset = first_offset_of(min_block, scan.min_id);
  scan.max_offset = first_offset_of(max_block, scan.max_id);
  return scan;
}

TokenScan TokenSource::check_vocab(std::uint64_t vocab_size) const {
  const TokenScan scan = scan_tokens();
  if (size_ == 0) return scan;
  if (scan.min_id < 0 || static_cast<std::uint64_t>(scan.max_id) >= vocab_size) {
    // Read again to report the first offending token, not the first occurrence of an extreme.
    std::vector<std::int32_t> scratch(std::min<std::uint64_t>(size_, std::uint64_t{1} << 16));
    for (std::uint64_t offset = 0; offset < size_; offset += scratch.size()) {
      read_checked(offset, std::min<std::uint64_t>(scratch.size(), size_ - offset), scratch.data(), vocab_size);
    }
  }
  return scan;
}

}  // namespace rwkv::data
