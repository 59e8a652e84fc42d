#include "train/dist/progress_watchdog.h"

#include <utility>

namespace rwkv::dist {

ProgressWatchdog::ProgressWatchdog(std::chrono::milliseconds timeout, StallHandler on_stall)
    : timeout_(timeout), on_stall_(std::move(on_stall)), thread_([this] { watch(); }) {}

ProgressWatchdog::~ProgressWatchdog() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void ProgressWatchdog::set_step(int64_t step) {
  const std::lock_guard lock(mutex_);
  step_ = step;
}

std::string ProgressWatchdog::swap_activity(std::string activity) {
  std::string previous;
  {
    const std::lock_guard lock(mutex_);
    previous = std::exchange(activity_, std::move(activity));
    since_ = std::chrono::steady_clock::now();
  }
  changed_.notify_all();
  return previous;
}

ProgressWatchdog::Scope::Scope(ProgressWatchdog& watchdog, std::string activity)
    : watchdog_(watchdog), previous_(watchdog.swap_activity(std::move(activity))) {}

ProgressWatchdog::Scope::~Scope() { watchdog_.swap_activity(std::move(previous_)); }

void ProgressWatchdog::watch() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (activity_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto deadline = since_ + timeout_;
    if (std::chrono::steady_clock::now() < deadline) {
      changed_.wait_until(lock, deadline);
      continue;
    }
    const std::string activity = activity_;
    const int64_t step = step_;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
    lock.unlock();
    on_stall_(activity, step, seconds);
    return;
  }
}

}  // namespace rwkv::dist
