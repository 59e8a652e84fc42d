#include "train/dist/launch_environment.h"

#include <cstdlib>
#include <string>

namespace rwkv::dist {

namespace {

int integer_variable(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  return *end == '\0' && parsed >= 0 ? static_cast<int>(parsed) : fallback;
}

}  // namespace

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
    // torchrun's convention: recognised so that it is refused clearly rather than run as N separate jobs.
    launch = {false, integer_variable("RANK", 0), integer_variable("WORLD_SIZE", 1), "RANK/WORLD_SIZE"};
  }
  return launch;
}

}  // namespace rwkv::dist
