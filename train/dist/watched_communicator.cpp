#include "train/dist/watched_communicator.h"

namespace rwkv::dist {

namespace {

// Waits for the inner collective under the watchdog, so a peer that never joins is reported.
class WatchedPendingCollective final : public PendingCollective {
public:
  WatchedPendingCollective(std::unique_ptr<PendingCollective> inner, ProgressWatchdog& watchdog)
      : inner_(std::move(inner)), watchdog_(watchdog) {}
  void finish() override {
    const ProgressWatchdog::Scope watched(watchdog_, "all-reduce (gradient bucket)");
    inner_->finish();
  }
  bool poll() override { return inner_->poll(); }

private:
  std::unique_ptr<PendingCollective> inner_;
  ProgressWatchdog& watchdog_;
};

}  // namespace

void WatchedCommunicator::all_reduce_sum(std::span<float> values) {
  const ProgressWatchdog::Scope watched(watchdog_, "all-reduce");
  inner_.all_reduce_sum(values);
}

std::unique_ptr<PendingCollective> WatchedCommunicator::start_all_reduce_sum(std::span<float> values) {
  const ProgressWatchdog::Scope watched(watchdog_, "all-reduce (gradient bucket, start)");
  return std::make_unique<WatchedPendingCollective>(inner_.start_all_reduce_sum(values), watchdog_);
}

void WatchedCommunicator::all_reduce_sum(std::span<double> values) {
  const ProgressWatchdog::Scope watched(watchdog_, "all-reduce");
  inner_.all_reduce_sum(values);
}

void WatchedCommunicator::reduce_scatter_sum(std::span<const float> all, std::span<float> mine) {
  const ProgressWatchdog::Scope watched(watchdog_, "reduce-scatter");
  inner_.reduce_scatter_sum(all, mine);
}

void WatchedCommunicator::all_gather(std::span<const float> mine, std::span<float> all) {
  const ProgressWatchdog::Scope watched(watchdog_, "all-gather");
  inner_.all_gather(mine, all);
}

void WatchedCommunicator::broadcast(std::span<std::byte> bytes, int root) {
  const ProgressWatchdog::Scope watched(watchdog_, "broadcast from rank " + std::to_string(root));
  inner_.broadcast(bytes, root);
}

void WatchedCommunicator::barrier() {
  const ProgressWatchdog::Scope watched(watchdog_, "barrier");
  inner_.barrier();
}

}  // namespace rwkv::dist
