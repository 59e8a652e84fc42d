// `rwkv train --gpus N`: starts N ranks of a command on this node, torchrun style, and supervises them. Each
// child gets RANK = LOCAL_RANK = i, WORLD_SIZE = LOCAL_WORLD_SIZE = N, MASTER_ADDR = 127.0.0.1 and
// MASTER_PORT (a free port unless one is given), so the ranks meet through the TCP bootstrap of NCCL.
// SIGINT/SIGTERM to the launcher are passed to every rank (they stop together after a step and rank 0 saves).
// When a rank fails (non-zero exit or killed by a signal), the others get SIGTERM and, after `grace`, SIGKILL:
// a job never waits on a dead peer. The launcher returns the first failure's status (128 + signal for a
// signal), else 0.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace rwkv::dist {

struct LocalLaunch {
  std::vector<std::string> argv;  // program (a path) and its arguments, the same for every rank
  int ranks = 1;
  int master_port = 0;            // 0: pick a free port on 127.0.0.1
  std::chrono::milliseconds grace{10'000};
  // Called with each line of the launcher's own messages (a failed rank, signals passed on).
  void (*say)(const std::string& line) = nullptr;
};

int run_local_ranks(const LocalLaunch& launch);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int pick_free_port();

}  // namespace rwkv::dist
