// The few CUDA runtime services core/ needs (device count, memory, copies). In a build without CUDA every
// function except device_count() throws a clear error, so CPU-only builds link and run unchanged.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/allocator.h"

namespace rwkv::cuda {

bool built_with_cuda();
int device_count();  // 0 without CUDA or without a usable GPU
void check_device(int index, const char* what);
Allocator& device_allocator(int index);

enum class CopyKind { host_to_device, device_to_host, device_to_device };
void memcpy_blocking(void* dst, const void* src, size_t bytes, CopyKind kind, int device);
void memset_zero(void* dst, size_t bytes, int device);

}  // namespace rwkv::cuda

namespace rwkv::cuda {
// Gathers a strided tensor of `rank` dims into a contiguous destination on the same device, converting
// between any two dtypes (the one kernel behind contiguous(), to(dtype) and copy_() on the GPU).
void strided_copy(const void* src, int src_dtype, const int64_t* shape, const int64_t* src_strides, int rank,
                  int64_t numel, void* dst, int dst_dtype, int device);
}  // namespace rwkv::cuda
