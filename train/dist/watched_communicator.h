// A communicator that runs every collective of another one under a ProgressWatchdog, so that a collective
// waiting for a hung peer longer than the timeout is reported (by name and step) instead of blocking forever.
#pragma once

#include "train/dist/communicator.h"
#include "train/dist/progress_watchdog.h"

namespace rwkv::dist {

class WatchedCommunicator final : public Communicator {
public:
  WatchedCommunicator(Communicator& inner, ProgressWatchdog& watchdog) : inner_(inner), watchdog_(watchdog) {}

  int rank() const override { return inner_.rank(); }
  int world_size() const override { return inner_.world_size(); }
  int local_rank() const override { return inner_.local_rank(); }
  int local_size() const override { return inner_.local_size(); }
  std::string name() const override { return inner_.name(); }
  bool is_data_parallel() const override { return inner_.is_data_parallel(); }
  bool accepts_device_memory() const override { return inner_.accepts_device_memory(); }
  void all_reduce_sum(std::span<float> values) override;
  std::unique_ptr<PendingCollective> start_all_reduce_sum(std::span<float> values) override;
  void all_reduce_sum(std::span<double> values) override;
  void reduce_scatter_sum(std::span<const float> all, std::span<float> mine) override;
  void all_gather(std::span<const float> mine, std::span<float> all) override;
  void broadcast(std::span<std::byte> bytes, int root) override;
  void barrier() override;
  void abort(int status) override { inner_.abort(status); }

private:
  Communicator& inner_;
  ProgressWatchdog& watchdog_;
};

}  // namespace rwkv::dist
