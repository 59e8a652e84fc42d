#include "core/op_profile.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "core/cuda_runtime.h"

namespace rwkv::profile {

namespace {

struct DeviceSpan {  // a GPU scope whose events are read when the collection stops
  const char* family;
  void* start;
  void* end;
};

std::atomic<bool> active{false};
thread_local int depth = 0;  // open scopes on this thread
std::mutex mutex;
std::map<std::string, FamilyTime> totals;
std::vector<DeviceSpan> spans;

void add(const char* family, double ms) {
  FamilyTime& total = totals[family];
  total.family = family;
  ++total.calls;
  total.ms += ms;
}

void discard_spans() {
  for (const DeviceSpan& span : spans) {
    cuda::destroy_event(span.start);
    cuda::destroy_event(span.end);
  }
  spans.clear();
}

}  // namespace

bool collecting() { return active.load(std::memory_order_relaxed); }

void start() {
  std::lock_guard lock(mutex);
  discard_spans();
  totals.clear();
  active.store(true);
}

std::vector<FamilyTime> stop() {
  active.store(false);
  std::lock_guard lock(mutex);
  try {
    for (const DeviceSpan& span : spans) add(span.family, cuda::elapsed_ms(span.start, span.end));
  } catch (...) {
    discard_spans();
    totals.clear();
    throw;
  }
  discard_spans();
  std::vector<FamilyTime> out;
  for (const auto& [name, total] : totals) out.push_back(total);
  totals.clear();
  std::sort(out.begin(), out.end(), [](const FamilyTime& a, const FamilyTime& b) { return a.ms > b.ms; });
  return out;
}

void Scope::begin(const char* family, Device device) {
  const bool outermost = depth == 0;
  if (outermost) {
    // What can throw comes first: a scope that failed to open is not open, and the depth is untouched.
    if (device.is_cuda()) {
      start_event_ = cuda::record_event(device.index);
    } else {
      cpu_start_ = std::chrono::steady_clock::now();
    }
  }
  family_ = family;
  device_ = device;
  outermost_ = outermost;
  open_ = true;
  ++depth;
}

void Scope::end() noexcept {
  --depth;
  if (!outermost_) return;
  if (!device_.is_cuda()) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - cpu_start_).count();
    std::lock_guard lock(mutex);
    if (collecting()) add(family_, ms);
    return;
  }
  void* end_event = nullptr;
  try {
    end_event = cuda::record_event(device_.index);
  } catch (...) {  // a failing device fails the op's next call; the profile just loses this span
    cuda::destroy_event(start_event_);
    return;
  }
  std::lock_guard lock(mutex);
  if (collecting()) {
    spans.push_back({family_, start_event_, end_event});
  } else {
    cuda::destroy_event(start_event_);
    cuda::destroy_event(end_event);
  }
}

}  // namespace rwkv::profile
