// The hang detector of data-parallel training in one process: the watchdog reports an activity that outlasts
// its timeout (with the step), restarts the clock when a nested activity ends, stays quiet while nothing is
// watched, and the watched communicator passes collectives through. The end-to-end hang of a rank under mpirun
// is tests/cli/data_parallel_hang.sh.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "train/config/config.h"
#include "train/dist/progress_watchdog.h"
#include "train/dist/single_process.h"
#include "train/dist/watched_communicator.h"

namespace rwkv::dist {
namespace {

using namespace std::chrono_literals;

struct Stall {
  std::string activity;
  int64_t step = 0;
  double seconds = 0;
};

// A watchdog whose stall report lands in a future instead of ending the process.
struct RecordingWatchdog {
  explicit RecordingWatchdog(std::chrono::milliseconds timeout)
      : stalled(report.get_future()),
        watchdog(timeout, [this](const std::string& activity, int64_t step, double seconds) {
          report.set_value({activity, step, seconds});
        }) {}
  bool fired_within(std::chrono::milliseconds wait) { return stalled.wait_for(wait) == std::future_status::ready; }

  std::promise<Stall> report;
  std::future<Stall> stalled;
  ProgressWatchdog watchdog;  // last: its thread may use the promise
};

TEST(DataParallelWatchdog, ReportsAnActivityThatOutlastsTheTimeout) {
  RecordingWatchdog recorder(100ms);
  recorder.watchdog.set_step(7);
  const ProgressWatchdog::Scope waiting(recorder.watchdog, "all-reduce");
  ASSERT_TRUE(recorder.fired_within(10s));
  const Stall stall = recorder.stalled.get();
  EXPECT_EQ(stall.activity, "all-reduce");
  EXPECT_EQ(stall.step, 7);
  EXPECT_GE(stall.seconds, 0.1);
}

TEST(DataParallelWatchdog, QuietWhileNothingIsWatchedOrActivitiesEndInTime) {
  RecordingWatchdog recorder(1000ms);
  std::this_thread::sleep_for(1500ms);  // idle: nothing to watch
  for (int i = 0; i < 5; ++i) {
    const ProgressWatchdog::Scope collective(recorder.watchdog, "barrier");
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(recorder.fired_within(1200ms));
}

TEST(DataParallelWatchdog, EndOfANestedActivityRestartsTheOuterClock) {
  RecordingWatchdog recorder(2000ms);
  {
    const ProgressWatchdog::Scope step(recorder.watchdog, "forward/backward");
    std::this_thread::sleep_for(800ms);
    {
      const ProgressWatchdog::Scope collective(recorder.watchdog, "all-reduce");
      std::this_thread::sleep_for(800ms);
    }
    // 1.6 s in the step so far, 2.4 s after the next wait, but never 2 s without progress.
    EXPECT_FALSE(recorder.fired_within(800ms));
    ASSERT_TRUE(recorder.fired_within(10s));  // now the step itself stalls
  }
  EXPECT_EQ(recorder.stalled.get().activity, "forward/backward");
}

TEST(DataParallelWatchdog, WatchedCommunicatorPassesCollectivesThrough) {
  RecordingWatchdog recorder(10s);
  SingleProcessCommunicator single;
  WatchedCommunicator watched(single, recorder.watchdog);
  EXPECT_EQ(watched.world_size(), 1);
  EXPECT_EQ(watched.name(), single.name());
  std::vector<float> all = {1, 2, 3}, mine(3);
  watched.reduce_scatter_sum(all, mine);
  EXPECT_EQ(mine, all);
  watched.barrier();
  EXPECT_FALSE(recorder.fired_within(0ms));
}

TEST(DataParallelConfig, DistTimeoutIsNonNegativeSecondsDefaulting600) {
  TrainConfig config;
  EXPECT_EQ(config.dist_timeout, 600);
  config.dist_timeout = 0;
  EXPECT_NO_THROW(config.validate());
  config.dist_timeout = -1;
  EXPECT_THROW(config.validate(), std::exception);
  const ParsedConfig parsed = parse_train_config({"--dist_timeout", "5"});
  EXPECT_EQ(parsed.config.dist_timeout, 5);
}

}  // namespace
}  // namespace rwkv::dist
