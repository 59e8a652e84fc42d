// CUDA runtime services in a build without the CUDA backend: no devices, clear errors.
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace rwkv::cuda {

bool built_with_cuda() { return false; }
int device_count() { return 0; }

void check_device(int index, const char* what) {
  RWKV_FAIL(what, ": cuda:", index, " requested, but this build has no CUDA backend (rebuild with the CUDA "
            "Toolkit installed)");
}

Allocator& device_allocator(int index) {
  check_device(index, "CUDA allocator");
  throw Error("unreachable");
}

void memcpy_blocking(void*, const void*, size_t, CopyKind, int device) { check_device(device, "cudaMemcpy"); }
void memset_zero(void*, size_t, int device) { check_device(device, "cudaMemset"); }

}  // namespace rwkv::cuda

namespace rwkv::cuda {
void strided_copy(const void*, int, const int64_t*, const int64_t*, int, int64_t, void*, const int64_t*, int,
                  int device) {
  check_device(device, "strided_copy");
}
}  // namespace rwkv::cuda

namespace rwkv::cuda {
void set_device(int index) { check_device(index, "set_device"); }
int current_device() { return 0; }
void* current_stream(int device) {
  check_device(device, "current_stream");
  return nullptr;
}
void* create_stream(int device) {
  check_device(device, "create_stream");
  return nullptr;
}
void destroy_stream(int device, void*) { check_device(device, "destroy_stream"); }
void synchronize(int device) { check_device(device, "synchronize"); }
StreamGuard::StreamGuard(int device, void*) : device_(device), previous_device_(0), previous_stream_(nullptr) {
  check_device(device, "StreamGuard");
}
StreamGuard::~StreamGuard() = default;
void empty_cache(int device) { check_device(device, "empty_cache"); }
double time_ms(int device, const std::function<void()>&) {
  check_device(device, "time_ms");
  return 0;
}
void* record_event(int device, void*) {
  check_device(device, "record_event");
  return nullptr;
}
double elapsed_ms(void*, void*) { throw Error("elapsed_ms: this build has no CUDA backend"); }
void destroy_event(void*) {}
void flush_l2(int device) { check_device(device, "flush_l2"); }
std::string device_name(int device) {
  check_device(device, "device_name");
  return {};
}
}  // namespace rwkv::cuda
