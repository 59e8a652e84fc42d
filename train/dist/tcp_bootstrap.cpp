#include "train/dist/tcp_bootstrap.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>

#include "core/error.h"

namespace rwkv::dist {

namespace {

using Clock = std::chrono::steady_clock;

// A peer first sends these 8 bytes and its rank (4 bytes, big-endian), so that stray connections are told apart.
constexpr std::array<char, 8> kHello = {'R', 'W', 'K', 'V', 'B', 'O', 'O', 'T'};
constexpr uint64_t kMaxPayloadBytes = uint64_t{1} << 20;

std::string address(const std::string& host, int port) { return host + ":" + std::to_string(port); }

// Closes the descriptor it owns.
class Socket {
public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  ~Socket() { reset(); }
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int fd() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_;
};

void make_non_blocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

// Waits until `fd` is ready for `events` or the deadline passes (false).
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
}

// Moves all `bytes` through a non-blocking socket before the deadline; false on timeout, error or a closed peer.
bool send_all(int fd, std::span<const std::byte> bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    if (!wait_ready(fd, POLLOUT, deadline)) return false;
    const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    if (sent <= 0) return false;
    bytes = bytes.subspan(static_cast<size_t>(sent));
  }
  return true;
}

bool receive_all(int fd, std::span<std::byte> bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    if (!wait_ready(fd, POLLIN, deadline)) return false;
    const ssize_t got = ::recv(fd, bytes.data(), bytes.size(), 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    if (got <= 0) return false;
    bytes = bytes.subspan(static_cast<size_t>(got));
  }
  return true;
}

std::array<std::byte, 8> big_endian(uint64_t value) {
  std::array<std::byte, 8> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(value >> (56 - 8 * i));
  return bytes;
}

uint64_t from_big_endian(std::span<const std::byte> bytes) {
  uint64_t value = 0;
  for (std::byte b : bytes) value = (value << 8) | static_cast<uint64_t>(b);
  return value;
}

struct AddressList {
  addrinfo* first = nullptr;
  ~AddressList() {
    if (first) ::freeaddrinfo(first);
  }
};

void resolve(const std::string& host, int port, AddressList& list) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  const int code = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list.first);
  RWKV_CHECK(code == 0, "TCP bootstrap: cannot resolve ", address(host, port), ": ", ::gai_strerror(code));
}

std::string missing_ranks(const std::vector<Socket>& peers) {
  std::string missing;
  for (size_t rank = 1; rank < peers.size(); ++rank) {
    if (peers[rank].fd() < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(rank);
  }
  return missing;
}

}  // namespace

BootstrapServer::BootstrapServer(const std::string& host, int port) : host_(host) {
  RWKV_CHECK(port >= 0 && port <= 65535, "TCP bootstrap: MASTER_PORT must be 0..65535, got ", port);
  AddressList list;
  resolve(host, port, list);
  std::string last_error = "no address";
  for (const addrinfo* candidate = list.first; candidate != nullptr; candidate = candidate->ai_next) {
    Socket socket(::socket(candidate->ai_family, candidate->ai_socktype, candidate->ai_protocol));
    if (socket.fd() < 0) continue;
    const int yes = 1;
    ::setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));  // restarts reuse the port at once
    if (::bind(socket.fd(), candidate->ai_addr, candidate->ai_addrlen) != 0 || ::listen(socket.fd(), 128) != 0) {
      last_error = std::strerror(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    ::getsockname(socket.fd(), reinterpret_cast<sockaddr*>(&bound), &length);
    char service[NI_MAXSERV] = {};
    ::getnameinfo(reinterpret_cast<sockaddr*>(&bound), length, nullptr, 0, service, sizeof(service), NI_NUMERICSERV);
    port_ = std::atoi(service);
    make_non_blocking(socket.fd());
    listener_ = socket.release();
    return;
  }
  RWKV_FAIL("TCP bootstrap: rank 0 cannot listen on ", address(host, port), ": ", last_error,
            " (is MASTER_ADDR an address of this host and MASTER_PORT free?)");
}

BootstrapServer::~BootstrapServer() {
  if (listener_ >= 0) ::close(listener_);
}

void BootstrapServer::send_to_peers(std::span<const std::byte> payload, int world_size,
                                    std::chrono::milliseconds timeout) {
  RWKV_CHECK(world_size >= 1, "TCP bootstrap: world size must be positive, got ", world_size);
  RWKV_CHECK(payload.size() <= kMaxPayloadBytes, "TCP bootstrap: payload of ", payload.size(), " bytes is too long");
  const auto deadline = Clock::now() + timeout;
  std::vector<Socket> peers(static_cast<size_t>(world_size));
  int arrived = 0;
  while (arrived < world_size - 1) {
    if (!wait_ready(listener_, POLLIN, deadline)) {
      RWKV_FAIL("TCP bootstrap: rank 0 at ", address(host_, port_), " waited ", timeout.count() / 1000.0, " s for ",
                world_size - 1, " peers; ", arrived, " arrived, missing rank(s) ", missing_ranks(peers),
                " (not started, wrong MASTER_ADDR/MASTER_PORT, or blocked by a firewall?)");
    }
    Socket peer(::accept(listener_, nullptr, nullptr));
    if (peer.fd() < 0) continue;
    make_non_blocking(peer.fd());
    // A silent or foreign connection must not use up the whole wait: its hello gets a few seconds.
    const auto hello_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(5));
    std::array<std::byte, kHello.size() + 4> hello{};
    if (!receive_all(peer.fd(), hello, hello_deadline) ||
        std::memcmp(hello.data(), kHello.data(), kHello.size()) != 0) {
      continue;  // not one of ours
    }
    const uint64_t rank = from_big_endian(std::span(hello).subspan(kHello.size()));
    RWKV_CHECK(rank >= 1 && rank < static_cast<uint64_t>(world_size), "TCP bootstrap: a peer at ",
               address(host_, port_), " says it is rank ", rank, ", outside 1..", world_size - 1,
               " (WORLD_SIZE differs between the ranks?)");
    RWKV_CHECK(peers[rank].fd() < 0, "TCP bootstrap: two peers say they are rank ", rank, " (duplicate RANK?)");
    peers[rank] = std::move(peer);
    ++arrived;
  }
  const std::array<std::byte, 8> length = big_endian(payload.size());
  for (size_t rank = 1; rank < peers.size(); ++rank) {
    RWKV_CHECK(send_all(peers[rank].fd(), length, deadline) && send_all(peers[rank].fd(), payload, deadline),
               "TCP bootstrap: rank 0 could not send to rank ", rank, " (it closed the connection?)");
  }
}

std::vector<std::byte> receive_from_root(const std::string& host, int port, int rank,
                                         std::chrono::milliseconds timeout) {
  RWKV_CHECK(rank >= 1, "TCP bootstrap: receive_from_root is for ranks 1 and up, got ", rank);
  const auto deadline = Clock::now() + timeout;
  std::string last_error = "timed out";
  for (;;) {
    AddressList list;
    resolve(host, port, list);
    for (const addrinfo* candidate = list.first; candidate != nullptr; candidate = candidate->ai_next) {
      Socket socket(::socket(candidate->ai_family, candidate->ai_socktype, candidate->ai_protocol));
      if (socket.fd() < 0) continue;
      make_non_blocking(socket.fd());
      if (::connect(socket.fd(), candidate->ai_addr, candidate->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last_error = std::strerror(errno);
        continue;
      }
      int error = 0;
      socklen_t length = sizeof(error);
      if (!wait_ready(socket.fd(), POLLOUT, deadline) ||
          ::getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
        if (error != 0) last_error = std::strerror(error);
        continue;
      }
      // Connected: say who we are and wait for the payload.
      std::array<std::byte, kHello.size() + 4> hello{};
      std::memcpy(hello.data(), kHello.data(), kHello.size());
      const std::array<std::byte, 8> rank_bytes = big_endian(static_cast<uint64_t>(rank));
      std::copy(rank_bytes.begin() + 4, rank_bytes.end(), hello.begin() + kHello.size());
      std::array<std::byte, 8> size_bytes{};
      RWKV_CHECK(send_all(socket.fd(), hello, deadline) && receive_all(socket.fd(), size_bytes, deadline),
                 "TCP bootstrap: rank ", rank, " reached rank 0 at ", address(host, port),
                 " but got no reply within ", timeout.count() / 1000.0, " s (other ranks missing there?)");
      const uint64_t size = from_big_endian(size_bytes);
      RWKV_CHECK(size <= kMaxPayloadBytes, "TCP bootstrap: rank 0 at ", address(host, port), " announced ", size,
                 " bytes (not an rwkv bootstrap?)");
      std::vector<std::byte> payload(size);
      RWKV_CHECK(receive_all(socket.fd(), payload, deadline), "TCP bootstrap: rank ", rank,
                 " lost the connection to rank 0 at ", address(host, port), " while receiving");
      return payload;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // rank 0 may not be listening yet
  }
  RWKV_FAIL("TCP bootstrap: rank ", rank, " could not reach rank 0 at ", address(host, port), " within ",
            timeout.count() / 1000.0, " s (last error: ", last_error,
            "; is rank 0 running and MASTER_ADDR/MASTER_PORT right?)");
}

}  // namespace rwkv::dist
