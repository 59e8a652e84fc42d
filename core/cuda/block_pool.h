// The bookkeeping of the CUDA caching allocator, independent of CUDA so that it is unit-tested without a GPU.
// Device memory comes in segments from a RawMemory backend (cudaMalloc in production, a fake in tests) and is
// handed out as blocks. A freed block is cached (not returned to the device) and reused by a later request of
// the same stream and pool; a block larger than the request is split and neighbours are merged when freed.
//
// Sizes: every request is rounded up to 512 bytes. Requests up to 1 MiB share 2 MiB segments (the small pool);
// requests up to 10 MiB get 20 MiB segments, larger ones a segment rounded up to 2 MiB (the large pool). When the
// backend runs out of memory, the pool frees every cached segment and tries once more before reporting.
// Header-only (block_pool_impl.h holds the definitions) so that CPU-only builds can test it.
//
// Streams: blocks are cached per stream. A block freed by a tensor last used on stream S is reused only by
// allocations on S, so stream order alone makes the reuse safe (a tensor used on another stream must be
// synchronised by its user before it is freed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "core/allocator.h"
#include "core/error.h"

namespace rwkv::cuda {

using StreamId = std::uintptr_t;  // a cudaStream_t's value; 0 is the legacy default stream

// ---- size policy (pure functions)
inline constexpr size_t kBlockAlignment = 512;
inline constexpr size_t kSmallRequestLimit = size_t{1} << 20;   // <= 1 MiB: small pool
inline constexpr size_t kSmallSegmentBytes = size_t{2} << 20;   // small pool segments
inline constexpr size_t kMediumRequestLimit = size_t{10} << 20;  // (1, 10] MiB: one 20 MiB segment
inline constexpr size_t kMediumSegmentBytes = size_t{20} << 20;
inline constexpr size_t kLargeSegmentGranularity = size_t{2} << 20;
inline constexpr size_t kMinLargeRemainder = size_t{1} << 20;  // a large block is split only if > 1 MiB remains

constexpr size_t round_up(size_t bytes, size_t multiple) { return (bytes + multiple - 1) / multiple * multiple; }
// Bytes a request occupies: at least one alignment unit, a multiple of 512.
constexpr size_t rounded_request(size_t bytes) { return round_up(bytes == 0 ? 1 : bytes, kBlockAlignment); }
constexpr bool is_small_request(size_t rounded) { return rounded <= kSmallRequestLimit; }
// Bytes asked from the device when no cached block fits.
constexpr size_t segment_bytes_for(size_t rounded) {
  if (is_small_request(rounded)) return kSmallSegmentBytes;
  if (rounded <= kMediumRequestLimit) return kMediumSegmentBytes;
  return round_up(rounded, kLargeSegmentGranularity);
}
// Whether a free block of `block_bytes` serving `rounded` bytes gives its remainder back to the pool.
constexpr bool should_split(size_t block_bytes, size_t rounded, bool small_pool) {
  const size_t remainder = block_bytes - rounded;
  return small_pool ? remainder >= kBlockAlignment : remainder > kMinLargeRemainder;
}

// Where segments come from. allocate() returns nullptr when the device is out of memory.
class RawMemory {
public:
  virtual ~RawMemory() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* pointer) = 0;
  virtual std::string device_name() const = 0;    // "cuda:0" in messages
  virtual std::string memory_summary() const = 0;  // e.g. "device free 1.2 GiB of 79.1 GiB"
};

std::string format_bytes(int64_t bytes);  // "1.50 GiB", "512 B"

class BlockPool {
public:
  explicit BlockPool(RawMemory& raw) : raw_(raw) {}
  ~BlockPool();  // releases cached segments; blocks still in use are leaked (their tensors outlive the pool)
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  void* allocate(size_t bytes, StreamId stream);
  void deallocate(void* pointer);
  void release_cached();  // gives every wholly free segment back to the device
  AllocatorStats stats() const;
  void reset_peak();  // the peaks start over from what is in use and reserved now

private:
  struct Block {
    Block(char* pointer_, size_t size_, StreamId stream_, bool small_pool_)
        : pointer(pointer_), size(size_), stream(stream_), small_pool(small_pool_) {}
    char* pointer;
    size_t size;
    StreamId stream;
    bool small_pool;
    size_t requested = 0;  // bytes asked for while allocated
    bool allocated = false;
    Block* prev = nullptr;  // neighbours inside the same segment
    Block* next = nullptr;
  };
  struct BySizeThenAddress {  // free blocks ordered by (stream, size, address): lower_bound is best fit
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeSet = std::set<Block*, BySizeThenAddress>;

  FreeSet& pool_for(bool small_pool) { return small_pool ? small_free_ : large_free_; }
  Block* take_best_fit(size_t rounded, StreamId stream, bool small_pool);
  Block* new_segment(size_t bytes, size_t rounded, StreamId stream, bool small_pool);
  void release_cached_locked();
  [[noreturn]] void out_of_memory(size_t bytes, size_t segment) const;

  RawMemory& raw_;
  mutable std::mutex mutex_;
  FreeSet small_free_, large_free_;
  std::unordered_map<void*, Block*> allocated_;
  AllocatorStats stats_;
};

}  // namespace rwkv::cuda

#include "core/cuda/block_pool_impl.h"
