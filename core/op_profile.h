// Where a training step's time goes, by op family (`rwkv bench train --profile`). Every op opens a Scope naming
// its family. While a collection runs, the outermost scope on a thread is timed (an op called inside another op
// is part of the outer one's time): on the CPU by the wall clock, on a GPU by two CUDA events around the work it
// enqueues on the current stream. On a GPU-bound step that is the op's device time and the gaps between ops
// belong to no family; when the GPU waits for the host, the wait is charged to the op it falls in (and an op
// that waits inside itself, e.g. an id range check reading a flag, carries its own wait). Events are reused
// across collections. Outside a collection a scope costs one relaxed atomic load.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/device.h"

namespace rwkv::profile {

struct FamilyTime {
  std::string family;
  int64_t calls = 0;
  double ms = 0;
};

void start();                    // starts a collection, discarding anything collected before
std::vector<FamilyTime> stop();  // ends it: waits for the timed device work; families by time, largest first
bool collecting();

class Scope {
public:
  Scope(const char* family, Device device) {
    if (collecting()) begin(family, device);
  }
  ~Scope() {
    if (open_) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

private:
  void begin(const char* family, Device device);
  void end() noexcept;

  bool open_ = false;
  bool outermost_ = false;
  const char* family_ = nullptr;
  Device device_;
  std::chrono::steady_clock::time_point cpu_start_;
  void* start_event_ = nullptr;
};

}  // namespace rwkv::profile
