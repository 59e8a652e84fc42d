// Definitions of core/cuda/block_pool.h (included by it; do not include directly).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace rwkv::cuda {

inline std::string format_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (std::abs(value) >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.2f %s", value, units[unit]);
  return text;
}

inline bool BlockPool::BySizeThenAddress::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return a->pointer < b->pointer;
}

inline BlockPool::~BlockPool() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
  // Free blocks left here belong to segments that still have allocated blocks: that memory stays with its
  // tensors, but the bookkeeping records go with the pool (nothing can return a block to it any more).
  for (FreeSet* pool : {&small_free_, &large_free_}) {
    for (Block* block : *pool) delete block;
    pool->clear();
  }
  for (const auto& [pointer, block] : allocated_) delete block;
  allocated_.clear();
}

inline void* BlockPool::allocate(size_t bytes, StreamId stream) {
  const size_t rounded = rounded_request(bytes);
  const bool small_pool = is_small_request(rounded);
  std::lock_guard lock(mutex_);
  Block* block = take_best_fit(rounded, stream, small_pool);
  if (block == nullptr) block = new_segment(bytes, rounded, stream, small_pool);
  if (should_split(block->size, rounded, small_pool)) {
    auto* rest = new Block(block->pointer + rounded, block->size - rounded, stream, small_pool);
    rest->prev = block;
    rest->next = block->next;
    if (block->next) block->next->prev = rest;
    block->next = rest;
    block->size = rounded;
    pool_for(small_pool).insert(rest);
  }
  block->allocated = true;
  block->requested = bytes;
  allocated_.emplace(block->pointer, block);
  stats_.bytes_in_use += static_cast<int64_t>(bytes);
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  stats_.bytes_allocated_blocks += static_cast<int64_t>(block->size);
  ++stats_.allocations;
  return block->pointer;
}

inline void BlockPool::deallocate(void* pointer) {
  std::lock_guard lock(mutex_);
  const auto found = allocated_.find(pointer);
  RWKV_CHECK(found != allocated_.end(), "CUDA caching allocator (", raw_.device_name(), "): freeing pointer ",
             pointer, " that it did not allocate");
  Block* block = found->second;
  allocated_.erase(found);
  stats_.bytes_in_use -= static_cast<int64_t>(block->requested);
  stats_.bytes_allocated_blocks -= static_cast<int64_t>(block->size);
  block->allocated = false;
  block->requested = 0;
  FreeSet& pool = pool_for(block->small_pool);
  // Merge with free neighbours so that a segment whose blocks are all free becomes one block again.
  if (Block* prev = block->prev; prev && !prev->allocated) {
    pool.erase(prev);
    prev->size += block->size;
    prev->next = block->next;
    if (block->next) block->next->prev = prev;
    delete block;
    block = prev;
  }
  if (Block* next = block->next; next && !next->allocated) {
    pool.erase(next);
    block->size += next->size;
    block->next = next->next;
    if (next->next) next->next->prev = block;
    delete next;
  }
  pool.insert(block);
}

inline void BlockPool::release_cached() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
}

inline AllocatorStats BlockPool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

inline void BlockPool::reset_peak() {
  std::lock_guard lock(mutex_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
  stats_.peak_bytes_reserved = stats_.bytes_reserved;
}

inline BlockPool::Block* BlockPool::take_best_fit(size_t rounded, StreamId stream, bool small_pool) {
  FreeSet& pool = pool_for(small_pool);
  Block key(nullptr, rounded, stream, small_pool);
  const auto found = pool.lower_bound(&key);
  if (found == pool.end() || (*found)->stream != stream) return nullptr;
  Block* block = *found;
  pool.erase(found);
  ++stats_.cache_hits;
  return block;
}

inline BlockPool::Block* BlockPool::new_segment(size_t bytes, size_t rounded, StreamId stream, bool small_pool) {
  const size_t segment = segment_bytes_for(rounded);
  void* pointer = raw_.allocate(segment);
  if (pointer == nullptr) {
    // Out of device memory: give the cache back and try once more.
    release_cached_locked();
    ++stats_.cache_flushes;
    pointer = raw_.allocate(segment);
    if (pointer == nullptr) out_of_memory(bytes, segment);
  }
  ++stats_.device_allocations;
  stats_.bytes_reserved += static_cast<int64_t>(segment);
  stats_.peak_bytes_reserved = std::max(stats_.peak_bytes_reserved, stats_.bytes_reserved);
  return new Block(static_cast<char*>(pointer), segment, stream, small_pool);
}

inline void BlockPool::release_cached_locked() {
  for (FreeSet* pool : {&small_free_, &large_free_}) {
    std::vector<Block*> whole_segments;
    for (Block* block : *pool) {
      if (block->prev == nullptr && block->next == nullptr) whole_segments.push_back(block);
    }
    for (Block* block : whole_segments) {
      pool->erase(block);
      raw_.release(block->pointer);
      stats_.bytes_reserved -= static_cast<int64_t>(block->size);
      delete block;
    }
  }
}

inline void BlockPool::out_of_memory(size_t bytes, size_t segment) const {
  RWKV_FAIL("CUDA out of memory on ", raw_.device_name(), ": tried to allocate ", format_bytes(static_cast<int64_t>(bytes)),
            " (", bytes, " bytes; a new segment of ", format_bytes(static_cast<int64_t>(segment)),
            ") after freeing the cache; in use ", format_bytes(stats_.bytes_in_use), ", peak in use ",
            format_bytes(stats_.peak_bytes_in_use), ", reserved ", format_bytes(stats_.bytes_reserved),
            " (cached ", format_bytes(stats_.bytes_reserved - stats_.bytes_allocated_blocks), "); ",
            raw_.memory_summary());
}

}  // namespace rwkv::cuda
