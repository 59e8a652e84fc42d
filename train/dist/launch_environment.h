// What the launcher says about this process: Open MPI's mpirun (OMPI_COMM_WORLD_*), Slurm's srun or another
// PMI launcher (PMI_RANK/PMI_SIZE, PMIX_RANK). Read before MPI starts, to pick the communicator. torchrun's
// RANK/WORLD_SIZE are read too (by_mpi false): that launch is not supported yet and must not pass silently.
#pragma once

#include <string>

namespace rwkv::dist {

struct LaunchEnvironment {
  bool by_mpi = false;  // an MPI launcher started this process
  int rank = 0;
  int world_size = 1;   // 1 when the launcher does not say
  std::string source;   // the variables it was read from, for messages
};

LaunchEnvironment detect_launch_environment();

}  // namespace rwkv::dist
