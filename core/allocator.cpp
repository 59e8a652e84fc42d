#include "core/allocator.h"
#include "core/allocator_testing.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace rwkv {

void* CpuAllocator::allocate(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* pointer = std::aligned_alloc(kCpuAlignment, rounded);
  RWKV_CHECK(pointer != nullptr, "CPU allocator: out of memory allocating ", bytes, " bytes");
  const int64_t now = in_use_.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  count_.fetch_add(1);
  return pointer;
}

void CpuAllocator::deallocate(void* pointer, size_t bytes) {
  std::free(pointer);
  in_use_.fetch_sub(static_cast<int64_t>(bytes));
}

AllocatorStats CpuAllocator::stats() const { return {in_use_.load(), peak_.load(), count_.load()}; }

namespace {
std::atomic<Allocator*> cuda_allocator_for_testing{nullptr};
}  // namespace

Allocator& allocator_for(Device device) {
  static CpuAllocator cpu_allocator;
  if (device.is_cpu()) return cpu_allocator;
  if (Allocator* replacement = cuda_allocator_for_testing.load()) return *replacement;
  return cuda::device_allocator(device.index);
}

void set_cuda_allocator_for_testing(Allocator* allocator) { cuda_allocator_for_testing.store(allocator); }

}  // namespace rwkv
