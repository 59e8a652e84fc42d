// The CUDA runtime services core/ and kernels/ need (devices, streams, the caching allocator, copies, timing). In
// a build without CUDA device_count() is 0 and every function that needs a device throws a clear error, so
// CPU-only builds link and run unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/allocator.h"

namespace rwkv::cuda {

bool built_with_cuda();
int device_count();  // 0 without CUDA or without a usable GPU
void check_device(int index, const char* what);
Allocator& device_allocator(int index);

// Copies and fills are ordered on the current stream of `device`; memcpy_blocking returns when the bytes arrived.
enum class CopyKind { host_to_device, device_to_host, device_to_device };
void memcpy_blocking(void* dst, const void* src, size_t bytes, CopyKind kind, int device);
void memset_zero(void* dst, size_t bytes, int device);

// ---- devices and streams. Every kernel runs on the calling thread's current stream of the current device: the
// legacy default stream unless a StreamGuard names another. Streams are cudaStream_t values passed as void*.
void set_device(int index);  // cheap when `index` is already current on this thread
int current_device();
void* current_stream(int device);
void* create_stream(int device);  // a new blocking stream (ordered with the legacy default stream)
void destroy_stream(int device, void* stream);
void synchronize(int device);  // waits for all work on the device

// Makes `stream` the current stream of `device` for this thread (and `device` current) until destroyed.
class StreamGuard {
public:
  StreamGuard(int device, void* stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

private:
  // Unused in a build without CUDA, where the guard does nothing.
  [[maybe_unused]] int device_, previous_device_;
  [[maybe_unused]] void* previous_stream_;
};

// ---- host waits on the device: every call in this project that blocks the CPU until the GPU has done
// something (a copy to or from pageable host memory through memcpy_blocking, a stream, event or device
// synchronisation, waiting for an NCCL collective) counts itself, so that `rwkv bench train` can show how many a
// training step makes. It counts blocking calls, not how long they stall; implicit synchronisations inside the
// CUDA runtime (cudaFree when the allocator empties its cache) are not seen. A process-wide count (0 without
// CUDA).
void count_host_wait();
int64_t host_waits();

// ---- the caching allocator behind device_allocator(): statistics come from Allocator::stats().
void empty_cache(int device);  // returns every wholly free cached segment to the device

// ---- benchmarking: the device time of the work fn() enqueues on the current stream (CUDA events), in ms;
// flush_l2 overwrites a buffer larger than the L2 cache so that the next timed run starts cold.
double time_ms(int device, const std::function<void()>& fn);
// An event recorded now on the device's current stream (for timing a span of enqueued work; `reuse`, an event
// of this device from an earlier call, is recorded again instead of creating one), the device time between two
// of them once both have completed (this waits for `end`), and its release.
void* record_event(int device, void* reuse = nullptr);
double elapsed_ms(void* start, void* end);
void destroy_event(void* event);
void flush_l2(int device);
std::string device_name(int device);  // "NVIDIA H100 80GB HBM3"

}  // namespace rwkv::cuda

namespace rwkv::cuda {
// Copies a strided tensor of `rank` dims into a destination on the same device, contiguous (dst_strides null)
// or strided (elements must not overlap), converting between any two dtypes (the one kernel behind
// contiguous(), to(dtype), copy_() and fill_() on the GPU).
void strided_copy(const void* src, int src_dtype, const int64_t* shape, const int64_t* src_strides, int rank,
                  int64_t numel, void* dst, const int64_t* dst_strides, int dst_dtype, int device);
}  // namespace rwkv::cuda
