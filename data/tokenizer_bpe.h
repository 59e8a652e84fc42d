// The byte-level BPE model: turns one pre-token (raw bytes) into token ids by applying merges in rank
// order, exactly as HuggingFace `tokenizers` BPE::merge_word does (lowest rank first, leftmost first among
// equal ranks). Results are cached per thread, since natural text repeats the same words constantly.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace rwkv::data {

struct BpeMerge {
  std::int32_t left;
  std::int32_t right;
  std::int32_t merged;
};

class BpeModel {
public:
  BpeModel() = default;
  // byte_ids[b]: id of the token for the single byte b, or -1 (such bytes are dropped, as tokenizers does
  // without an unk token). merges: in rank order (rank = index); a later duplicate pair replaces an earlier
  // one, as in tokenizers.
  BpeModel(const std::array<std::int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges);

  // Appends the ids of the pre-token word to out. Thread-safe.
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const;

  // The same without the cache (for tests and for words too long to cache).
  void merge_word(std::string_view word, std::vector<std::int32_t>& out) const;

private:
  struct MergeSlot {
    std::uint64_t pair = kEmptyPair;
    std::int32_t rank = 0;
    std::int32_t merged = 0;
  };
  static constexpr std::uint64_t kEmptyPair = ~std::uint64_t{0};

  const MergeSlot* find_merge(std::int32_t left, std::int32_t right) const;

  std::array<std::int32_t, 256> byte_ids_{};
  std::vector<MergeSlot> merge_slots_;  // open addressing, power-of-two size
  std::uint64_t merge_mask_ = 0;
  std::uint64_t instance_id_ = 0;  // tells the per-thread caches of different models apart
};

}  // namespace rwkv::data
