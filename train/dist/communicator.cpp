#include "train/dist/communicator.h"

#include <cstdlib>
#include <memory>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "train/dist/launch_environment.h"
#include "train/dist/single_process.h"
#ifdef RWKV_HAVE_MPI
#include "train/dist/mpi_communicator.h"
#endif
#ifdef RWKV_HAVE_NCCL
#include <chrono>

#include "train/config/config.h"
#include "train/dist/nccl_communicator.h"
#endif

namespace rwkv::dist {

namespace {

class CompletedCollective final : public PendingCollective {
public:
  void finish() override {}
  bool poll() override { return true; }
};

// A torchrun-style launch: NCCL on the GPU of LOCAL_RANK, its unique id sent over TCP by rank 0. The hang
// timeout is the default of dist_timeout (the config is read later); the TCP wait uses it too.
std::unique_ptr<Communicator> make_environment_communicator([[maybe_unused]] const LaunchEnvironment& launch) {
#ifdef RWKV_HAVE_NCCL
  const TcpRendezvous rendezvous = detect_tcp_rendezvous();
  RWKV_CHECK(launch.rank < launch.world_size, "data-parallel launch without MPI: RANK ", launch.rank,
             " is not below WORLD_SIZE ", launch.world_size);
  const NcclCommunicator::Place place{launch.rank, launch.world_size, rendezvous.local_rank, rendezvous.local_size};
  return make_nccl_over_tcp(place, rendezvous.master_host, rendezvous.master_port, rendezvous.local_rank,
                            std::chrono::seconds(TrainConfig{}.dist_timeout));
#else
  RWKV_FAIL("data-parallel training: ", launch.source, " say rank ", launch.rank, " of ", launch.world_size,
            ", but launching without MPI (torchrun style) needs NCCL, which this rwkv was built without; start ",
            "the ranks with mpirun or srun, or rebuild with CUDA and NCCL");
#endif
}

std::unique_ptr<Communicator> make_process_communicator() {
  const LaunchEnvironment launch = detect_launch_environment();
  // torchrun style: NCCL ranks; one rank too when there is a GPU to run it (`rwkv train --gpus 1`).
  if (launch.by_environment && (launch.world_size > 1 || (launches_without_mpi() && cuda::device_count() > 0))) {
    return make_environment_communicator(launch);
  }
  if (!launch.by_mpi) return std::make_unique<SingleProcessCommunicator>();
#ifdef RWKV_HAVE_MPI
  return std::make_unique<MpiCommunicator>();
#else
  RWKV_CHECK(launch.world_size <= 1, "data-parallel training: started as rank ", launch.rank, " of ",
             launch.world_size, " (", launch.source, "), but this rwkv was built without MPI; install an MPI ",
             "(e.g. libopenmpi-dev) and rebuild, or run a single process");
  return std::make_unique<SingleProcessCommunicator>();
#endif
}

}  // namespace

Communicator& process_communicator() {
  static const std::unique_ptr<Communicator> communicator = make_process_communicator();
  return *communicator;
}

bool launches_without_mpi() {
#ifdef RWKV_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<PendingCollective> Communicator::start_all_reduce_sum(std::span<float> values) {
  all_reduce_sum(values);
  return std::make_unique<CompletedCollective>();
}

}  // namespace rwkv::dist
