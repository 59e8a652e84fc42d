// Allocators own raw memory for tensor storage. The CPU allocator returns 64-byte aligned blocks (cache lines,
// AVX-512 loads); device allocators (the CUDA caching allocator) implement the same interface.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace rwkv {

struct AllocatorStats {
  int64_t bytes_in_use = 0;  // bytes requested by live allocations
  int64_t peak_bytes_in_use = 0;
  int64_t allocations = 0;  // calls to allocate() since start
  // Caching allocators only (zero for the CPU allocator):
  int64_t bytes_allocated_blocks = 0;  // bytes_in_use after rounding to blocks
  int64_t bytes_reserved = 0;          // held from the device: allocated blocks + cached free blocks
  int64_t peak_bytes_reserved = 0;
  int64_t device_allocations = 0;  // segments obtained from the device (cudaMalloc calls that succeeded)
  int64_t cache_hits = 0;          // allocations served from the cache
  int64_t cache_flushes = 0;       // times the cache was emptied to retry an allocation that ran out of memory
};

class Allocator {
public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* pointer, size_t bytes) = 0;
  virtual Device device() const = 0;
  virtual AllocatorStats stats() const = 0;
  // Starts the peaks over from what is in use (and reserved) now: a benchmark of several models in one process
  // reports each model's own peak.
  virtual void reset_peak() = 0;
};

// The process-wide allocator for a device (CUDA ones throw when the build or the machine has no CUDA).
Allocator& allocator_for(Device device);

inline constexpr size_t kCpuAlignment = 64;

class CpuAllocator final : public Allocator {
public:
  void* allocate(size_t bytes) override;
  void deallocate(void* pointer, size_t bytes) override;
  Device device() const override { return Device::cpu(); }
  AllocatorStats stats() const override;
  void reset_peak() override { peak_.store(in_use_.load()); }

private:
  std::atomic<int64_t> in_use_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> count_{0};
};

}  // namespace rwkv
