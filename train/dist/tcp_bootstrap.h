// The rendezvous of a launch without MPI (torchrun's MASTER_ADDR/MASTER_PORT convention): rank 0 listens on
// MASTER_PORT and, once every other rank has connected and said who it is, sends them all the same bytes (the
// NCCL unique id). Both sides give up after a timeout with an error naming host:port and the missing ranks,
// so that a peer that never arrives is reported instead of waited for.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace rwkv::dist {

// Rank 0's side. Listens from construction (peers may connect before rank 0 has its payload).
class BootstrapServer {
public:
  // `port` 0 lets the system choose one (tests); port() tells which.
  BootstrapServer(const std::string& host, int port);
  ~BootstrapServer();
  BootstrapServer(const BootstrapServer&) = delete;
  BootstrapServer& operator=(const BootstrapServer&) = delete;

  int port() const { return port_; }
  // Waits for ranks 1..world_size-1 to connect, then sends each of them `payload`. Throws rwkv::Error naming
  // the address and the ranks that have not arrived when `timeout` passes first.
  void send_to_peers(std::span<const std::byte> payload, int world_size, std::chrono::milliseconds timeout);

private:
  std::string host_;
  int port_ = 0;
  int listener_ = -1;
};

// A non-zero rank's side: connects to rank 0 at host:port (retrying while it is not listening yet), says its
// rank and returns the payload. Throws rwkv::Error naming host:port when `timeout` passes first.
std::vector<std::byte> receive_from_root(const std::string& host, int port, int rank,
                                         std::chrono::milliseconds timeout);

}  // namespace rwkv::dist
