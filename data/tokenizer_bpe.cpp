#include "data/tokenizer_bpe.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <memory>
#include <string>

namespace rwkv::data {

namespace {

std::uint64_t next_instance_id() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

inline std::uint64_t mix_pair(std::uint64_t pair) {
  pair *= 0x9E3779B97F4A7C15ULL;
  return pair ^ (pair >> 29);
}

inline std::uint64_t hash_word(std::string_view word) {
  constexpr std::uint64_t kMultiplier = 0xFF51AFD7ED558CCDULL;
  std::uint64_t hash = 0x9E3779B97F4A7C15ULL ^ word.size();
  std::size_t i = 0;
  for (; i + 8 <= word.size(); i += 8) {
    std::uint64_t chunk;
    std::memcpy(&chunk, word.data() + i, 8);
    hash = (hash ^ chunk) * kMultiplier;
    hash ^= hash >> 32;
  }
  if (i < word.size()) {
    std::uint64_t chunk = 0;
    std::memcpy(&chunk, word.data() + i, word.size() - i);
    hash = (hash ^ chunk) * kMultiplier;
    hash ^= hash >> 32;
  }
  hash *= 0xC4CEB9FE1A85EC53ULL;
  return hash ^ (hash >> 29);
}

// Per-thread cache word -> ids for one model. Open addressing; when it fills up it starts over, which
// keeps it simple and bounded (frequent words come straight back).
class WordCache {
public:
  static constexpr std::size_t kSlotBits = 17;
  static constexpr std::size_t kMaxEntries = (std::size_t{1} << kSlotBits) / 2;
  static constexpr std::size_t kMaxWordBytes = 128;

  explicit WordCache(std::uint64_t owner) : owner_(owner), slots_(std::size_t{1} << kSlotBits) {}

  std::uint64_t owner() const { return owner_; }

  // Appends the cached ids of word to out and returns true, or returns false.
  bool append(std::string_view word, std::uint64_t hash, std::vector<std::int32_t>& out) const {
    const std::uint32_t tag = make_tag(hash);
    for (std::size_t index = hash & kMask;; index = (index + 1) & kMask) {
      const Slot& slot = slots_[index];
      if (slot.tag == 0) return false;
      if (slot.tag == tag && slot.key_length == word.size() &&
          std::memcmp(keys_.data() + slot.key_offset, word.data(), word.size()) == 0) {
        out.insert(out.end(), ids_.begin() + slot.ids_offset, ids_.begin() + slot.ids_offset + slot.id_count);
        return true;
      }
    }
  }

  void insert(std::string_view word, std::uint64_t hash, const std::int32_t* ids, std::size_t count) {
    if (word.size() > kMaxWordBytes || count > 0xFFFF) return;
    if (entries_ >= kMaxEntries) clear();
    std::size_t index = hash & kMask;
    while (slots_[index].tag != 0) index = (index + 1) & kMask;
    Slot& slot = slots_[index];
    slot.tag = make_tag(hash);
    slot.key_offset = static_cast<std::uint32_t>(keys_.size());
    slot.key_length = static_cast<std::uint16_t>(word.size());
    slot.ids_offset = static_cast<std::uint32_t>(ids_.size());
    slot.id_count = static_cast<std::uint16_t>(count);
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + count);
    ++entries_;
  }

private:
  static constexpr std::size_t kMask = (std::size_t{1} << kSlotBits) - 1;
  struct Slot {
    std::uint32_t tag = 0;  // 0 = empty
    std::uint32_t key_offset = 0;
    std::uint32_t ids_offset = 0;
    std::uint16_t key_length = 0;
    std::uint16_t id_count = 0;
  };
  static std::uint32_t make_tag(std::uint64_t hash) { return static_cast<std::uint32_t>(hash >> 32) | 1u; }

  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    entries_ = 0;
  }

  std::uint64_t owner_;
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<std::int32_t> ids_;
  std::size_t entries_ = 0;
};

// The calling thread's cache for the model with this instance id. A few models can be in use at once;
// the most recently used cache is kept in front.
WordCache& thread_cache(std::uint64_t owner) {
  constexpr std::size_t kCaches = 4;
  thread_local std::unique_ptr<WordCache> caches[kCaches];
  if (caches[0] && caches[0]->owner() == owner) [[likely]] {
    return *caches[0];
  }
  std::size_t found = kCaches - 1;  // reused (least recently used) when the owner has no cache yet
  for (std::size_t i = 1; i < kCaches; ++i) {
    if (caches[i] && caches[i]->owner() == owner) found = i;
  }
  if (!caches[found] || caches[found]->owner() != owner) caches[found] = std::make_unique<WordCache>(owner);
  std::rotate(caches, caches + found, caches + found + 1);
  return *caches[0];
}

struct Symbol {
  std::int32_t id;
  std::int32_t prev;
  std::int32_t next;
  bool alive;
};

struct Candidate {
  std::int32_t rank;
  std::int32_t position;  // index of the left symbol
  std::int32_t merged;
};

// std heap functions build a max-heap; this ordering makes the top the lowest (rank, position).
inline bool lower_priority(const Candidate& a, const Candidate& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.position > b.position);
}

}  // namespace

BpeModel::BpeModel(const std::array<std::int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges)
    : byte_ids_(byte_ids), instance_id_(next_instance_id()) {
  const std::size_t slots = std::bit_ceil(std::max<std::size_t>(16, merges.size() * 2 + 1));
  merge_slots_.assign(slots, MergeSlot{});
  merge_mask_ = slots - 1;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const BpeMerge& merge = merges[rank];
    const std::uint64_t pair = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(merge.left)) << 32) |
                               static_cast<std::uint32_t>(merge.right);
    std::uint64_t index = mix_pair(pair) & merge_mask_;
    while (merge_slots_[index].pair != kEmptyPair && merge_slots_[index].pair != pair) {
      index = (index + 1) & merge_mask_;
    }
    merge_slots_[index] = {pair, static_cast<std::int32_t>(rank), merge.merged};
  }
}

const BpeModel::MergeSlot* BpeModel::find_merge(std::int32_t left, std::int32_t right) const {
  const std::uint64_t pair =
      (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  for (std::uint64_t index = mix_pair(pair) & merge_mask_;; index = (index + 1) & merge_mask_) {
    const MergeSlot& slot = merge_slots_[index];
    if (slot.pair == pair) return &slot;
    if (slot.pair == kEmptyPair) return nullptr;
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<std::int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  for (const char c : word) {
    const std::int32_t id = byte_ids_[static_cast<unsigned char>(c)];
    if (id < 0) continue;
    const auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  if (symbols.size() == 1) {
    out.push_back(symbols[0].id);
    return;
  }

  const auto push_candidate = [&](std::int32_t position) {
    const std::int32_t next = symbols[position].next;
    if (const MergeSlot* merge = find_merge(symbols[position].id, symbols[next].id)) {
      heap.push_back({merge->rank, position, merge->merged});
      std::push_heap(heap.begin(), heap.end(), lower_priority);
    }
  };
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) push_candidate(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower_priority);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.position];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Skip entries made stale by earlier merges: the pair there must still merge into the same token.
    const MergeSlot* merge = find_merge(left.id, right.id);
    if (merge == nullptr || merge->merged != top.merged) continue;
    left.id = top.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.position;
    if (left.prev >= 0) push_candidate(left.prev);
    if (left.next >= 0) push_candidate(top.position);
  }
  for (std::int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  // Do not keep the scratch of a freak word (say, megabytes without a space) for the thread's lifetime.
  if (symbols.capacity() > (std::size_t{1} << 16)) {
    symbols = {};
    heap = {};
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.size() == 1) {
    const std::int32_t id = byte_ids_[static_cast<unsigned char>(word[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  if (word.size() > WordCache::kMaxWordBytes) {
    merge_word(word, out);
    return;
  }
  WordCache& cache = thread_cache(instance_id_);
  const std::uint64_t hash = hash_word(word);
  if (cache.append(word, hash, out)) return;
  const std::size_t first = out.size();
  merge_word(word, out);
  cache.insert(word, hash, out.data() + first, out.size() - first);
}

}  // namespace rwkv::data
