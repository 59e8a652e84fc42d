// Shared pieces of the CUDA kernels: launch helpers (current stream, grid sizes, launch checks), scratch memory
// from the caching allocator, and deterministic block reductions (a fixed shuffle tree, never atomics).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/allocator.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace rwkv::cuda_kernels {

// The stream every kernel of this library launches on: the current stream of the current device.
inline cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::current_stream(cuda::current_device())); }

// Throws a clear error when the last launch failed (bad configuration, missing kernel image for this GPU, ...).
inline void check_launch(const char* what) {
  const cudaError_t status = cudaGetLastError();
  RWKV_CHECK(status == cudaSuccess, what, ": CUDA kernel launch failed: ", cudaGetErrorName(status), ": ",
             cudaGetErrorString(status));
}

inline void check_cuda(cudaError_t status, const char* what) {
  RWKV_CHECK(status == cudaSuccess, what, ": CUDA error ", cudaGetErrorName(status), ": ",
             cudaGetErrorString(status));
}

inline constexpr int kMaxGridX = 1 << 30;  // kernels loop (grid-stride) over anything larger
inline constexpr int kMaxGridYZ = 65535;

// Blocks for a grid-stride loop over n items with `threads` per block (at least one block).
inline int blocks_for(int64_t n, int threads, int64_t cap = 65535) {
  const int64_t wanted = (n + threads - 1) / threads;
  return static_cast<int>(wanted < 1 ? 1 : (wanted < cap ? wanted : cap));
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

#define RWKV_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Device memory for the duration of one call, from the caching allocator of the current device (none for 0
// bytes). Freeing it returns the block to the cache of the current stream, so later work on that stream may reuse
// it safely: kernels already queued on the stream run before any later user of the block.
class Scratch {
public:
  explicit Scratch(size_t bytes)
      : allocator_(&allocator_for(Device::cuda(cuda::current_device()))), bytes_(bytes),
        pointer_(bytes ? allocator_->allocate(bytes) : nullptr) {}
  ~Scratch() {
    if (pointer_) allocator_->deallocate(pointer_, bytes_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(pointer_);
  }

private:
  Allocator* allocator_;
  size_t bytes_;
  void* pointer_;
};

// ---- deterministic reductions: the same inputs always combine in the same order.
template <typename T>
__device__ inline T warp_sum(T value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result. `shared` holds
// 32 values. Contains __syncthreads(): call from every thread of the block.
template <typename T>
__device__ inline T block_sum(T value, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  value = warp_sum(value);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = lane < warps ? shared[lane] : T(0);
  return warp_sum(value);
}

}  // namespace rwkv::cuda_kernels
