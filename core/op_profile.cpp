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
  int device;
  void* start;
  void* end;
};

std::atomic<bool> active{false};
thread_local int depth = 0;  // open scopes on this thread
std::mutex mutex;
std::map<std::string, FamilyTime> totals;
std::vector<DeviceSpan> spans;
// Events read by an earlier stop(), per device, recorded again by later scopes: a profile of many steps creates
// only as many events as one step has ops, and cudaEventCreate stays out of the timed ops.
std::map<int, std::vector<void*>> spare_events;

void add(const char* family, double ms) {
  FamilyTime& total = totals[family];
  total.family = family;
  ++total.calls;
  total.ms += ms;
}

void* take_spare(int device) {
  std::lock_guard lock(mutex);
  std::vector<void*>& spare = spare_events[device];
  if (spare.empty()) return nullptr;
  void* event = spare.back();
  spare.pop_back();
  return event;
}

// With the mutex held.
void give_back(int device, void* event) {
  if (event != nullptr) spare_events[device].push_back(event);
}

void give_back_spans() {
  for (const DeviceSpan& span : spans) {
    give_back(span.device, span.start);
    give_back(span.device, span.end);
  }
  spans.clear();
}

// An event for `device` recorded now, or null when the device refuses (the span is then not timed).
void* recorded_event(int device) noexcept {
  void* spare = take_spare(device);
  try {
    return cuda::record_event(device, spare);
  } catch (...) {
    std::lock_guard lock(mutex);
    give_back(device, spare);
    return nullptr;
  }
}

}  // namespace

bool collecting() { return active.load(std::memory_order_relaxed); }

void start() {
  std::lock_guard lock(mutex);
  give_back_spans();
  totals.clear();
  active.store(true);
}

std::vector<FamilyTime> stop() {
  active.store(false);
  std::lock_guard lock(mutex);
  try {
    for (const DeviceSpan& span : spans) add(span.family, cuda::elapsed_ms(span.start, span.end));
  } catch (...) {
    give_back_spans();
    totals.clear();
    throw;
  }
  give_back_spans();
  std::vector<FamilyTime> out;
  for (const auto& [name, total] : totals) out.push_back(total);
  totals.clear();
  std::sort(out.begin(), out.end(), [](const FamilyTime& a, const FamilyTime& b) { return a.ms > b.ms; });
  return out;
}

void Scope::begin(const char* family, Device device) {
  outermost_ = depth == 0;
  if (outermost_) {
    if (device.is_cuda()) {
      start_event_ = recorded_event(device.index);  // null: this span goes untimed, the nesting stays right
    } else {
      cpu_start_ = std::chrono::steady_clock::now();
    }
  }
  family_ = family;
  device_ = device;
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
  if (start_event_ == nullptr) return;
  void* end_event = recorded_event(device_.index);
  std::lock_guard lock(mutex);
  if (collecting() && end_event != nullptr) {
    spans.push_back({family_, device_.index, start_event_, end_event});
  } else {
    give_back(device_.index, start_event_);
    give_back(device_.index, end_event);
  }
}

}  // namespace rwkv::profile
