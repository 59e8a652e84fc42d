// Allocators own raw memory for tensor storage. The CPU allocator returns 64-byte aligned blocks (cache lines,
// AVX-512 loads); device allocators (the CUDA caching allocator) implement the same interface.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace rwkv {

struct AllocatorStats {
  int64_t bytes_in_use = 0;
  int64_t peak_bytes_in_use = 0;
  int64_t allocations = 0;  // calls to allocate() since start
};

class Allocator {
public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* pointer, size_t bytes) = 0;
  virtual Device device() const = 0;
  virtual AllocatorStats stats() const = 0;
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

private:
  std::atomic<int64_t> in_use_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> count_{0};
};

}  // namespace rwkv
