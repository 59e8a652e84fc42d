#include "train/dist/launch_environment.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace rwkv::dist {

namespace {

int integer_variable(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  return *end == '\0' && parsed >= 0 ? static_cast<int>(parsed) : fallback;
}

// A variable the TCP rendezvous cannot do without: a non-negative integer up to `limit`.
int required_integer(const char* name, int limit) {
  const char* value = std::getenv(name);
  RWKV_CHECK(value != nullptr && *value != '\0', "data-parallel launch without MPI: ", name,
             " is not set (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT)");
  const int parsed = integer_variable(name, -1);
  RWKV_CHECK(parsed >= 0 && parsed <= limit, "data-parallel launch without MPI: ", name, " must be an integer in 0..",
             limit, ", got '", value, "'");
  return parsed;
}

}  // namespace

TcpRendezvous detect_tcp_rendezvous() {
  TcpRendezvous rendezvous;
  const char* host = std::getenv("MASTER_ADDR");
  RWKV_CHECK(host != nullptr && *host != '\0', "data-parallel launch without MPI: MASTER_ADDR is not set (the ",
             "address of rank 0's host)");
  rendezvous.master_host = host;
  rendezvous.master_port = required_integer("MASTER_PORT", 65535);
  rendezvous.local_rank = required_integer("LOCAL_RANK", 1 << 20);
  // LOCAL_WORLD_SIZE is torchrun's; without it this process only knows it is one of at least local_rank + 1.
  rendezvous.local_size = integer_variable("LOCAL_WORLD_SIZE", rendezvous.local_rank + 1);
  return rendezvous;
}

LaunchEnvironment detect_launch_environment() {
  LaunchEnvironment launch;
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    launch = {true, integer_variable("OMPI_COMM_WORLD_RANK", 0), integer_variable("OMPI_COMM_WORLD_SIZE", 1),
              "OMPI_COMM_WORLD_RANK/SIZE"};
  } else if (std::getenv("PMI_SIZE") != nullptr) {
    launch = {true, integer_variable("PMI_RANK", 0), integer_variable("PMI_SIZE", 1), "PMI_RANK/PMI_SIZE"};
  } else if (std::getenv("PMIX_RANK") != nullptr) {
    // PMIx publishes the size only through its API; MPI_Comm_size will tell.
    launch = {true, integer_variable("PMIX_RANK", 0), integer_variable("SLURM_NTASKS", 1), "PMIX_RANK"};
  } else if (std::getenv("WORLD_SIZE") != nullptr) {
    // torchrun's convention (also what `rwkv train --gpus N` sets): NCCL ranks meeting over TCP.
    launch = {false, integer_variable("RANK", 0), integer_variable("WORLD_SIZE", 1), "RANK/WORLD_SIZE", true};
  }
  return launch;
}

}  // namespace rwkv::dist
