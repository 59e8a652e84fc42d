// What the launcher says about this process: Open MPI's mpirun (OMPI_COMM_WORLD_*), Slurm's srun or another
// PMI launcher (PMI_RANK/PMI_SIZE, PMIX_RANK). Read before MPI starts, to pick the communicator. torchrun's
// RANK/WORLD_SIZE are read too (by_mpi false): NCCL with a TCP bootstrap, or a clear refusal without NCCL.
#pragma once

#include <string>

namespace rwkv::dist {

struct LaunchEnvironment {
  bool by_mpi = false;  // an MPI launcher started this process
  int rank = 0;
  int world_size = 1;   // 1 when the launcher does not say
  std::string source;   // the variables it was read from, for messages
  bool by_environment = false;  // torchrun's variables (RANK, WORLD_SIZE, ...) without an MPI launcher
};

LaunchEnvironment detect_launch_environment();

// Where the ranks of a launch without MPI meet (torchrun's variables): rank 0's MASTER_ADDR:MASTER_PORT and this
// process's place on its node (LOCAL_RANK, LOCAL_WORLD_SIZE; the node-local rank picks the GPU). Throws
// rwkv::Error naming the variable that is missing or malformed.
struct TcpRendezvous {
  std::string master_host;
  int master_port = 0;
  int local_rank = 0;
  int local_size = 1;
};

TcpRendezvous detect_tcp_rendezvous();

}  // namespace rwkv::dist
