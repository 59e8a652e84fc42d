// The TCP rendezvous of a launch without MPI, on 127.0.0.1 with forked processes as the other ranks: every peer
// receives rank 0's bytes (also when it starts before rank 0 listens), and a peer that never arrives, or a
// rank 0 that never listens, ends in an error naming host:port within the timeout.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "train/dist/tcp_bootstrap.h"

namespace rwkv::dist {
namespace {

using namespace std::chrono_literals;

const std::string kHost = "127.0.0.1";

std::vector<std::byte> sample_payload() {
  std::vector<std::byte> bytes(128);  // the size of an NCCL unique id
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7 + 3);
  return bytes;
}

// Runs a peer in a child process; its exit status says whether it received `expected`.
pid_t start_peer(int port, int rank, const std::vector<std::byte>& expected) {
  const pid_t child = ::fork();
  if (child == 0) {
    int status = 1;
    try {
      status = receive_from_root(kHost, port, rank, 10s) == expected ? 0 : 2;
    } catch (const std::exception&) {
      status = 3;
    }
    ::_exit(status);  // no gtest teardown in the child
  }
  return child;
}

int exit_status(pid_t child) {
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A port that nothing listens on right now (the system chose it, then it was closed).
int free_port() { return BootstrapServer(kHost, 0).port(); }

TEST(DataParallelBootstrap, EveryPeerReceivesRankZerosBytes) {
  BootstrapServer server(kHost, 0);
  ASSERT_GT(server.port(), 0);
  const std::vector<std::byte> payload = sample_payload();
  const pid_t first = start_peer(server.port(), 1, payload);
  const pid_t second = start_peer(server.port(), 2, payload);
  ASSERT_GT(first, 0);
  ASSERT_GT(second, 0);
  EXPECT_NO_THROW(server.send_to_peers(payload, 3, 10s));
  EXPECT_EQ(exit_status(first), 0);
  EXPECT_EQ(exit_status(second), 0);
}

TEST(DataParallelBootstrap, PeerThatStartsFirstWaitsForRankZero) {
  const int port = free_port();
  const std::vector<std::byte> payload = sample_payload();
  const pid_t peer = start_peer(port, 1, payload);
  ASSERT_GT(peer, 0);
  std::this_thread::sleep_for(300ms);  // the peer is already retrying
  BootstrapServer server(kHost, port);
  EXPECT_NO_THROW(server.send_to_peers(payload, 2, 10s));
  EXPECT_EQ(exit_status(peer), 0);
}

TEST(DataParallelBootstrap, RankZeroNamesThePeersThatNeverArrived) {
  BootstrapServer server(kHost, 0);
  const std::vector<std::byte> payload = sample_payload();
  const pid_t peer = start_peer(server.port(), 1, payload);  // rank 2 of 3 never comes
  const auto start = std::chrono::steady_clock::now();
  try {
    server.send_to_peers(payload, 3, 1500ms);
    ADD_FAILURE() << "no error although rank 2 never arrived";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(kHost + ":" + std::to_string(server.port())), std::string::npos) << message;
    EXPECT_NE(message.find("missing rank(s) 2"), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::kill(peer, SIGKILL);  // it is still waiting for the bytes
  exit_status(peer);
}

TEST(DataParallelBootstrap, PeerNamesTheAddressWhenRankZeroNeverListens) {
  const int port = free_port();
  const auto start = std::chrono::steady_clock::now();
  try {
    receive_from_root(kHost, port, 1, 1000ms);
    ADD_FAILURE() << "no error although nothing listens on port " << port;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("could not reach rank 0 at " + kHost + ":" + std::to_string(port)), std::string::npos)
        << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace rwkv::dist
