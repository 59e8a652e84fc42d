// The host-wait counter of core/cuda_runtime.h, in every build (kernels and NCCL code call it too).
#include <atomic>

#include "core/cuda_runtime.h"

namespace rwkv::cuda {

namespace {
std::atomic<int64_t> waits{0};
}  // namespace

void count_host_wait() { waits.fetch_add(1, std::memory_order_relaxed); }
int64_t host_waits() { return waits.load(std::memory_order_relaxed); }

}  // namespace rwkv::cuda
