// CUDA runtime services for core/ (compiled only when the CUDA backend is built).
#include "core/cuda_runtime.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace rwkv::cuda {

namespace {

void check_cuda(cudaError_t status, const char* what) {
  RWKV_CHECK(status == cudaSuccess, what, ": CUDA error ", cudaGetErrorName(status), ": ",
             cudaGetErrorString(status));
}

// Plain cudaMalloc/cudaFree with statistics; the caching allocator of the CUDA backend replaces it.
class DirectCudaAllocator final : public Allocator {
public:
  explicit DirectCudaAllocator(int index) : index_(index) {}
  void* allocate(size_t bytes) override {
    check_cuda(cudaSetDevice(index_), "cudaSetDevice");
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(&pointer, std::max<size_t>(bytes, 1));
    RWKV_CHECK(status == cudaSuccess, "CUDA allocator: out of memory allocating ", bytes, " bytes on cuda:",
               index_, " (", cudaGetErrorString(status), ")");
    std::lock_guard lock(mutex_);
    stats_.bytes_in_use += static_cast<int64_t>(bytes);
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
    ++stats_.allocations;
    return pointer;
  }
  void deallocate(void* pointer, size_t bytes) override {
    cudaSetDevice(index_);
    cudaFree(pointer);
    std::lock_guard lock(mutex_);
    stats_.bytes_in_use -= static_cast<int64_t>(bytes);
  }
  Device device() const override { return Device::cuda(index_); }
  AllocatorStats stats() const override {
    std::lock_guard lock(mutex_);
    return stats_;
  }

private:
  int index_;
  mutable std::mutex mutex_;
  AllocatorStats stats_;
};

}  // namespace

bool built_with_cuda() { return true; }

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no device" error
      return 0;
    }
    return n;
  }();
  return count;
}

void check_device(int index, const char* what) {
  RWKV_CHECK(index >= 0 && index < device_count(), what, ": cuda:", index, " is not available (this machine has ",
             device_count(), " CUDA device(s))");
}

Allocator& device_allocator(int index) {
  check_device(index, "CUDA allocator");
  static std::vector<std::unique_ptr<DirectCudaAllocator>> allocators = [] {
    std::vector<std::unique_ptr<DirectCudaAllocator>> all;
    for (int i = 0; i < device_count(); ++i) all.push_back(std::make_unique<DirectCudaAllocator>(i));
    return all;
  }();
  return *allocators[static_cast<size_t>(index)];
}

void memcpy_blocking(void* dst, const void* src, size_t bytes, CopyKind kind, int device) {
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  const cudaMemcpyKind cuda_kind = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                                   : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                                      : cudaMemcpyDeviceToDevice;
  check_cuda(cudaMemcpy(dst, src, bytes, cuda_kind), "cudaMemcpy");
}

void memset_zero(void* dst, size_t bytes, int device) {
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  check_cuda(cudaMemset(dst, 0, bytes), "cudaMemset");
}

}  // namespace rwkv::cuda
