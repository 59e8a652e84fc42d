// The NCCL communicator: the collectives of data-parallel training on one GPU per rank, within a node and
// across nodes. Buffers may be device memory (gradients: no host round trip) or host memory (the loss, small
// messages), which is staged through a device scratch buffer. Every collective is enqueued on the device's
// current stream, after the kernels that produced its input, and returns when it has completed.
// The communicator is non-blocking (ncclConfig_t::blocking = 0): a collective that has not finished within the
// timeout (a hung or dead peer) aborts the communicator and throws an error naming the collective, instead of
// waiting forever. Compiled only when CMake finds NCCL with the CUDA backend.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "train/dist/communicator.h"

namespace rwkv::dist {

class NcclCommunicator final : public Communicator {
public:
  struct Place {
    int rank = 0;
    int world_size = 1;
    int local_rank = 0;
    int local_size = 1;
  };
  // Rank 0 fills the bytes (the NCCL unique id), the function must hand them to every other rank.
  using ShareUniqueId = std::function<void(std::span<std::byte> unique_id)>;

  // `timeout` 0 waits forever. `launcher` (may be null) ends the job in abort() (MPI_Abort).
  NcclCommunicator(const Place& place, int device, std::chrono::seconds timeout, const ShareUniqueId& share,
                   Communicator* launcher);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return place_.rank; }
  int world_size() const override { return place_.world_size; }
  int local_rank() const override { return place_.local_rank; }
  int local_size() const override { return place_.local_size; }
  std::string name() const override { return name_; }
  bool accepts_device_memory() const override { return true; }
  void all_reduce_sum(std::span<float> values) override;
  // Device buffers: on a side stream after the current stream's queued work (host buffers: blocking).
  std::unique_ptr<PendingCollective> start_all_reduce_sum(std::span<float> values) override;
  void all_reduce_sum(std::span<double> values) override;
  void reduce_scatter_sum(std::span<const float> all, std::span<float> mine) override;
  void all_gather(std::span<const float> mine, std::span<float> all) override;
  void broadcast(std::span<std::byte> bytes, int root) override;
  void barrier() override;
  void abort(int status) override;

private:
  struct State;  // NCCL and CUDA handles, kept out of this header
  Place place_;
  std::string name_;
  Communicator* launcher_;
  std::unique_ptr<State> state_;
};

// NCCL ranks for the processes of an MPI (or other launcher's) job: rank 0's unique id travels by the
// launcher's broadcast; each rank uses `device`.
std::unique_ptr<NcclCommunicator> make_nccl_over_launcher(Communicator& launcher, int device,
                                                          std::chrono::seconds timeout);

// NCCL ranks for a launch without MPI (torchrun convention): the unique id travels over TCP from rank 0 at
// master_host:master_port (tcp_bootstrap.h), waiting at most `timeout` (0: 10 minutes) for the peers.
std::unique_ptr<NcclCommunicator> make_nccl_over_tcp(const NcclCommunicator::Place& place,
                                                     const std::string& master_host, int master_port, int device,
                                                     std::chrono::seconds timeout);

}  // namespace rwkv::dist
