// CUDA runtime services for core/ and kernels/ (compiled only when the CUDA backend is built): devices, per-thread
// current streams, the caching allocator (core/cuda/block_pool.h over cudaMalloc) and copies.
#include "core/cuda_runtime.h"

#include <cuda_runtime.h>

#include <array>
#include <memory>
#include <vector>

#include "core/cuda/block_pool.h"
#include "core/error.h"

namespace rwkv::cuda {

namespace {

constexpr int kMaxDevices = 64;

void check_cuda(cudaError_t status, const char* what) {
  RWKV_CHECK(status == cudaSuccess, what, ": CUDA error ", cudaGetErrorName(status), ": ",
             cudaGetErrorString(status));
}

// Per-thread state: which device is current (-1: not yet asked) and each device's current stream.
struct ThreadState {
  int device = -1;
  std::array<void*, kMaxDevices> streams{};
};
thread_local ThreadState thread_state;

cudaStream_t stream_of(int device) {
  return static_cast<cudaStream_t>(thread_state.streams[static_cast<size_t>(device)]);
}

// Makes a device current for a scope and gives the caller's back after it: a tensor made on (or freed from)
// cuda:1 while the caller works on cuda:0 must not leave cuda:1 current for the caller's next launches.
class DeviceScope {
public:
  explicit DeviceScope(int index) : previous_(current_device()) { set_device(index); }
  ~DeviceScope() {
    if (thread_state.device != previous_ && cudaSetDevice(previous_) == cudaSuccess) thread_state.device = previous_;
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

private:
  int previous_;
};

// Segments come from cudaMalloc; an out-of-memory status becomes nullptr so that the pool can free its cache.
class CudaMemory final : public RawMemory {
public:
  explicit CudaMemory(int index) : index_(index) {}
  void* allocate(size_t bytes) override {
    const DeviceScope scope(index_);
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(&pointer, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: clear it so later launches do not report it
      return nullptr;
    }
    check_cuda(status, "cudaMalloc");
    return pointer;
  }
  void release(void* pointer) override {
    const DeviceScope scope(index_);
    cudaFree(pointer);  // errors here only occur at process teardown; nothing useful can be done with them
  }
  std::string device_name() const override { return "cuda:" + std::to_string(index_); }
  std::string memory_summary() const override {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
      cudaGetLastError();
      return "device memory information unavailable";
    }
    return "the device has " + format_bytes(static_cast<int64_t>(free_bytes)) + " free of " +
           format_bytes(static_cast<int64_t>(total_bytes));
  }

private:
  int index_;
};

class CachingAllocator final : public Allocator {
public:
  explicit CachingAllocator(int index) : index_(index), memory_(index), pool_(memory_) {}
  void* allocate(size_t bytes) override {
    return pool_.allocate(bytes, reinterpret_cast<StreamId>(current_stream(index_)));
  }
  void deallocate(void* pointer, size_t) override { pool_.deallocate(pointer); }
  Device device() const override { return Device::cuda(index_); }
  AllocatorStats stats() const override { return pool_.stats(); }
  void reset_peak() override { pool_.reset_peak(); }
  void empty_cache() { pool_.release_cached(); }

private:
  int index_;
  CudaMemory memory_;
  BlockPool pool_;
};

CachingAllocator& caching_allocator(int index) {
  check_device(index, "CUDA allocator");
  // Never destroyed: tensors held in static storage may be freed after main returns, and the CUDA runtime
  // tears itself down at exit anyway.
  static std::vector<CachingAllocator*>* allocators = [] {
    auto* all = new std::vector<CachingAllocator*>();
    for (int i = 0; i < device_count(); ++i) all->push_back(new CachingAllocator(i));
    return all;
  }();
  return *(*allocators)[static_cast<size_t>(index)];
}

}  // namespace

bool built_with_cuda() { return true; }

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the "no device" error
      return 0;
    }
    return n < kMaxDevices ? n : kMaxDevices;
  }();
  return count;
}

void check_device(int index, const char* what) {
  RWKV_CHECK(index >= 0 && index < device_count(), what, ": cuda:", index, " is not available (this machine has ",
             device_count(), " CUDA device(s))");
}

Allocator& device_allocator(int index) { return caching_allocator(index); }

void empty_cache(int device) { caching_allocator(device).empty_cache(); }

void set_device(int index) {
  if (thread_state.device == index) return;
  check_device(index, "set_device");
  check_cuda(cudaSetDevice(index), "cudaSetDevice");
  thread_state.device = index;
}

int current_device() {
  if (thread_state.device < 0) {
    int index = 0;
    check_cuda(cudaGetDevice(&index), "cudaGetDevice");
    thread_state.device = index;
  }
  return thread_state.device;
}

void* current_stream(int device) {
  check_device(device, "current_stream");
  return thread_state.streams[static_cast<size_t>(device)];
}

void* create_stream(int device) {
  set_device(device);
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  return stream;
}

void destroy_stream(int device, void* stream) {
  set_device(device);
  check_cuda(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
}

void synchronize(int device) {
  set_device(device);
  count_host_wait();
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

StreamGuard::StreamGuard(int device, void* stream)
    : device_(device), previous_device_(current_device()), previous_stream_(current_stream(device)) {
  set_device(device);
  thread_state.streams[static_cast<size_t>(device)] = stream;
}

StreamGuard::~StreamGuard() {
  thread_state.streams[static_cast<size_t>(device_)] = previous_stream_;
  if (previous_device_ != device_) {
    cudaSetDevice(previous_device_);  // a destructor cannot throw; the device was valid when the guard began
    thread_state.device = previous_device_;
  }
}

double time_ms(int device, const std::function<void()>& fn) {
  set_device(device);
  const cudaStream_t stream = stream_of(device);
  cudaEvent_t start = nullptr, stop = nullptr;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  float elapsed = 0;
  try {
    check_cuda(cudaEventRecord(start, stream), "cudaEventRecord");
    fn();
    check_cuda(cudaEventRecord(stop, stream), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    check_cuda(cudaEventElapsedTime(&elapsed, start, stop), "cudaEventElapsedTime");
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return elapsed;
}

void* record_event(int device, void* reuse) {
  set_device(device);
  cudaEvent_t event = static_cast<cudaEvent_t>(reuse);
  if (event == nullptr) check_cuda(cudaEventCreate(&event), "cudaEventCreate");
  const cudaError_t recorded = cudaEventRecord(event, stream_of(device));
  if (recorded != cudaSuccess && reuse == nullptr) cudaEventDestroy(event);
  check_cuda(recorded, "cudaEventRecord");
  return event;
}

double elapsed_ms(void* start, void* end) {
  count_host_wait();
  check_cuda(cudaEventSynchronize(static_cast<cudaEvent_t>(end)), "cudaEventSynchronize");
  float elapsed = 0;
  check_cuda(cudaEventElapsedTime(&elapsed, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)),
             "cudaEventElapsedTime");
  return elapsed;
}

void destroy_event(void* event) { cudaEventDestroy(static_cast<cudaEvent_t>(event)); }

void flush_l2(int device) {
  set_device(device);
  int l2_bytes = 0;
  check_cuda(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device), "cudaDeviceGetAttribute");
  const size_t bytes = 2 * static_cast<size_t>(l2_bytes) + (size_t{1} << 20);
  Allocator& allocator = device_allocator(device);
  void* buffer = allocator.allocate(bytes);
  const cudaError_t status = cudaMemsetAsync(buffer, 0, bytes, stream_of(device));
  allocator.deallocate(buffer, bytes);
  check_cuda(status, "flush_l2");
}

std::string device_name(int device) {
  check_device(device, "device_name");
  cudaDeviceProp properties{};
  check_cuda(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  return properties.name;
}

void memcpy_blocking(void* dst, const void* src, size_t bytes, CopyKind kind, int device) {
  set_device(device);
  const cudaMemcpyKind cuda_kind = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                                   : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                                      : cudaMemcpyDeviceToDevice;
  const cudaStream_t stream = stream_of(device);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cuda_kind, stream), "cudaMemcpyAsync");
  count_host_wait();
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize after a copy");
}

void memset_zero(void* dst, size_t bytes, int device) {
  set_device(device);
  check_cuda(cudaMemsetAsync(dst, 0, bytes, stream_of(device)), "cudaMemsetAsync");
}

}  // namespace rwkv::cuda
