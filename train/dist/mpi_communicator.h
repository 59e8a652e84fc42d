// The MPI communicator (MPI_COMM_WORLD): initialised once per process with MPI_Init_thread, errors returned as
// codes (MPI_ERRORS_RETURN) and thrown as rwkv::Error instead of aborting inside the library; finalised when
// the process-wide instance is destroyed at exit. Compiled only when CMake finds MPI.
#pragma once

#include "train/dist/communicator.h"

namespace rwkv::dist {

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string name() const override { return name_; }
  void all_reduce_sum(std::span<float> values) override;
  std::unique_ptr<PendingCollective> start_all_reduce_sum(std::span<float> values) override;
  void all_reduce_sum(std::span<double> values) override;
  void reduce_scatter_sum(std::span<const float> all, std::span<float> mine) override;
  void all_gather(std::span<const float> mine, std::span<float> all) override;
  void broadcast(std::span<std::byte> bytes, int root) override;
  void barrier() override;
  void abort(int status) override;

private:
  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  std::string name_;
  bool initialised_here_ = false;  // MPI_Finalize only what this object initialised
};

}  // namespace rwkv::dist
