#include "train/dist/local_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/error.h"

extern char** environ;

namespace rwkv::dist {

namespace {

using Clock = std::chrono::steady_clock;

// The variables a launcher sets: inherited values would confuse the ranks.
bool is_launch_variable(const std::string& entry) {
  for (const char* name : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=",
                           "MASTER_PORT=", "OMPI_COMM_WORLD_SIZE=", "OMPI_COMM_WORLD_RANK=", "PMI_SIZE=",
                           "PMI_RANK=", "PMIX_RANK="}) {
    if (entry.rfind(name, 0) == 0) return true;
  }
  return false;
}

std::vector<std::string> rank_environment(int rank, int ranks, int port) {
  std::vector<std::string> entries;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!is_launch_variable(*entry)) entries.emplace_back(*entry);
  }
  entries.push_back("RANK=" + std::to_string(rank));
  entries.push_back("LOCAL_RANK=" + std::to_string(rank));
  entries.push_back("WORLD_SIZE=" + std::to_string(ranks));
  entries.push_back("LOCAL_WORLD_SIZE=" + std::to_string(ranks));
  entries.push_back("MASTER_ADDR=127.0.0.1");
  entries.push_back("MASTER_PORT=" + std::to_string(port));
  return entries;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

int exit_status_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

std::string describe_status(int wait_status) {
  if (WIFSIGNALED(wait_status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(wait_status));
  return "exited with status " + std::to_string(exit_status_of(wait_status));
}

// Blocks the signals the launcher waits for and restores the previous mask when it ends.
class BlockedSignals {
public:
  BlockedSignals() {
    sigemptyset(&set_);
    for (int signal : {SIGINT, SIGTERM, SIGCHLD}) sigaddset(&set_, signal);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  }
  ~BlockedSignals() {
    // Drop the SIGCHLDs of reaped ranks so that they do not reach a handler after the launcher returns.
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    const timespec zero{0, 0};
    while (sigtimedwait(&child, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  BlockedSignals(const BlockedSignals&) = delete;
  BlockedSignals& operator=(const BlockedSignals&) = delete;
  const sigset_t& set() const { return set_; }

private:
  sigset_t set_{};
  sigset_t previous_{};
};

}  // namespace

int pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  RWKV_CHECK(fd >= 0, "--gpus: cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  ::close(fd);
  RWKV_CHECK(ok, "--gpus: cannot find a free port on 127.0.0.1: ", std::strerror(error));
  return ntohs(address.sin_port);
}

int run_local_ranks(const LocalLaunch& launch) {
  RWKV_CHECK(launch.ranks >= 1, "local launch: need at least one rank, got ", launch.ranks);
  RWKV_CHECK(!launch.argv.empty(), "local launch: no program");
  const auto say = [&](const std::string& line) {
    if (launch.say) launch.say(line);
  };
  const int port = launch.master_port > 0 ? launch.master_port : pick_free_port();

  const BlockedSignals blocked;
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &blocked.set());
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::optional<pid_t>> running;  // per rank, until reaped
  std::vector<std::string> arguments = launch.argv;
  std::vector<char*> argv = pointers_to(arguments);
  for (int rank = 0; rank < launch.ranks; ++rank) {
    std::vector<std::string> environment = rank_environment(rank, launch.ranks, port);
    std::vector<char*> envp = pointers_to(environment);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, argv[0], nullptr, &attributes, argv.data(), envp.data());
    if (spawned != 0) {
      for (const auto& child : running) ::kill(*child, SIGKILL);
      for (const auto& child : running) ::waitpid(*child, nullptr, 0);
      posix_spawnattr_destroy(&attributes);
      RWKV_FAIL("local launch: cannot start rank ", rank, " (", launch.argv[0], "): ", std::strerror(spawned));
    }
    running.emplace_back(pid);
  }
  posix_spawnattr_destroy(&attributes);

  int result = 0;
  std::optional<Clock::time_point> kill_at;  // after a failure: when the survivors get SIGKILL
  const auto signal_all = [&](int signal) {
    for (const auto& child : running) {
      if (child) ::kill(*child, signal);
    }
  };
  for (;;) {
    for (size_t rank = 0; rank < running.size(); ++rank) {
      if (!running[rank]) continue;
      int status = 0;
      if (::waitpid(*running[rank], &status, WNOHANG) != *running[rank]) continue;
      running[rank].reset();
      const int code = exit_status_of(status);
      if (code != 0 && result == 0) {
        result = code;
        say("rwkv train --gpus: rank " + std::to_string(rank) + " " + describe_status(status) +
            "; stopping the other ranks");
        signal_all(SIGTERM);
        kill_at = Clock::now() + launch.grace;
      }
    }
    bool any = false;
    for (const auto& child : running) any = any || child.has_value();
    if (!any) return result;
    if (kill_at && Clock::now() >= *kill_at) {
      say("rwkv train --gpus: ranks still running " + std::to_string(launch.grace.count()) +
          " ms after the failure: killing them");
      signal_all(SIGKILL);
      kill_at.reset();
    }
    const timespec tick{0, 100'000'000};
    siginfo_t info{};
    const int signal = sigtimedwait(&blocked.set(), &info, &tick);
    if (signal == SIGINT || signal == SIGTERM) {
      say(std::string("rwkv train --gpus: ") + strsignal(signal) + ": passing it to every rank");
      signal_all(signal);
    }
  }
}

}  // namespace rwkv::dist
