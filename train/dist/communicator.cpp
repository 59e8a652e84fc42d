#include "train/dist/communicator.h"

#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "train/dist/launch_environment.h"
#include "train/dist/single_process.h"
#ifdef RWKV_HAVE_MPI
#include "train/dist/mpi_communicator.h"
#endif

namespace rwkv::dist {

namespace {

std::unique_ptr<Communicator> make_process_communicator() {
  const LaunchEnvironment launch = detect_launch_environment();
  RWKV_CHECK(launch.by_mpi || launch.world_size <= 1, "data-parallel training: ", launch.source, " say rank ",
             launch.rank, " of ", launch.world_size, ", but launching without MPI (torchrun style) is not ",
             "supported yet; start the ranks with mpirun or srun");
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

}  // namespace rwkv::dist
