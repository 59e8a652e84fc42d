// Turns a silent hang of data-parallel training into an error: the training thread names what it is doing
// (a collective, a step's forward/backward), and a watchdog thread calls `on_stall` when one such activity
// has lasted longer than the timeout. A rank that hangs (not dies) never returns from its compute or from a
// collective, so either it or a peer waiting for it reports the stall and ends the job.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace rwkv::dist {

class ProgressWatchdog {
public:
  // Called once, on the watchdog thread, with the stalled activity, the step and the seconds it has lasted.
  // It is expected to end the process (e.g. MPI_Abort); if it returns, the watchdog stops watching.
  using StallHandler = std::function<void(const std::string& activity, int64_t step, double seconds)>;

  ProgressWatchdog(std::chrono::milliseconds timeout, StallHandler on_stall);
  ~ProgressWatchdog();
  ProgressWatchdog(const ProgressWatchdog&) = delete;
  ProgressWatchdog& operator=(const ProgressWatchdog&) = delete;

  // The step that messages name (the one being computed).
  void set_step(int64_t step);

  // While alive, `activity` is being watched; the previous activity (if any) resumes with a fresh clock when
  // it ends, since finishing a collective is progress. Scopes nest in the order they are made.
  class Scope {
  public:
    Scope(ProgressWatchdog& watchdog, std::string activity);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

  private:
    ProgressWatchdog& watchdog_;
    std::string previous_;
  };

private:
  std::string swap_activity(std::string activity);  // returns the one it replaces
  void watch();

  const std::chrono::milliseconds timeout_;
  const StallHandler on_stall_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string activity_;  // "" = nothing watched
  std::chrono::steady_clock::time_point since_;
  int64_t step_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

}  // namespace rwkv::dist
