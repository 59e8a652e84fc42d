// The communicator of a run without a launcher: world size 1, every collective leaves its buffer as it is.
#pragma once

#include <algorithm>

#include "core/error.h"
#include "train/dist/communicator.h"

namespace rwkv::dist {

class SingleProcessCommunicator final : public Communicator {
public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string name() const override { return "none (single process)"; }
  bool is_data_parallel() const override { return false; }
  void all_reduce_sum(std::span<float>) override {}
  void all_reduce_sum(std::span<double>) override {}
  void reduce_scatter_sum(std::span<const float> all, std::span<float> mine) override { copy(all, mine); }
  void all_gather(std::span<const float> mine, std::span<float> all) override { copy(mine, all); }
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  void abort(int) override {}

private:
  static void copy(std::span<const float> from, std::span<float> to) {
    RWKV_CHECK(from.size() == to.size(), "communicator: buffers of ", from.size(), " and ", to.size(), " floats");
    std::copy(from.begin(), from.end(), to.begin());
  }
};

}  // namespace rwkv::dist
