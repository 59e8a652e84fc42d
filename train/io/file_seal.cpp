#include "train/io/file_seal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/little_endian.h"

namespace rwkv {

namespace {

constexpr char kSealMagic[8] = {'R', 'W', 'K', 'V', 'S', 'E', 'A', 'L'};
// Seal layout (little-endian): magic[8], format version u64 (1), file length u64, checksum u64, zeros.
constexpr uint64_t kSealVersion = 1;

class Fd {
public:
  Fd(const std::string& path, int flags) : fd_(::open(path.c_str(), flags)) {
    RWKV_CHECK(fd_ >= 0, path, ": cannot open: ", std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

private:
  int fd_;
};

uint64_t rotate_left(uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

// A fast 64-bit checksum over 8-byte words: every step is a bijection of the running value for a fixed
// word and of the word for a fixed running value, so any change confined to one word always changes the
// result. It detects damage; it is not a defence against deliberate forgery.
class Checksum {
public:
  explicit Checksum(uint64_t length) : hash_(0x243F6A8885A308D3ull ^ length) {}
  void add(const unsigned char* data, size_t bytes) {  // bytes is a multiple of 8 except in the last call
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
      uint64_t word;
      std::memcpy(&word, data + i, 8);
      mix(word);
    }
    if (i < bytes) {
      uint64_t word = 0;
      std::memcpy(&word, data + i, bytes - i);
      mix(word ^ (uint64_t{0xFF} << 56));
    }
  }
  uint64_t value() const { return hash_ ^ (hash_ >> 29); }

private:
  void mix(uint64_t word) { hash_ = rotate_left(hash_ ^ (word * 0x9E3779B97F4A7C15ull), 29) * 0xBF58476D1CE4E5B9ull; }
  uint64_t hash_;
};

uint64_t checksum_after_seal(int fd, uint64_t length, const std::string& path) {
  Checksum checksum(length);
  std::vector<unsigned char> block(size_t{4} << 20);
  for (uint64_t offset = kSealBytes; offset < length;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(block.size(), length - offset));
    const ssize_t got = ::pread(fd, block.data(), want, static_cast<off_t>(offset));
    RWKV_CHECK(got > 0, path, ": cannot read at byte ", offset, ": ", got == 0 ? "unexpected end" : std::strerror(errno));
    checksum.add(block.data(), static_cast<size_t>(got));
    offset += static_cast<uint64_t>(got);
    RWKV_CHECK(got % 8 == 0 || offset == length, path, ": short read at byte ", offset);
  }
  return checksum.value();
}

using FileIdentity = std::tuple<dev_t, ino_t, off_t, int64_t, int64_t>;  // device, inode, size, mtime

std::mutex verified_mutex;
std::set<FileIdentity>& verified_files() {
  static std::set<FileIdentity> files;
  return files;
}

}  // namespace

void seal_file(const std::string& path) {
  const Fd file(path, O_RDWR);
  struct stat info {};
  RWKV_CHECK(::fstat(file.get(), &info) == 0, path, ": cannot stat: ", std::strerror(errno));
  const uint64_t length = static_cast<uint64_t>(info.st_size);
  RWKV_CHECK(length > kSealBytes, path, ": too short to seal (", length, " bytes)");
  unsigned char seal[kSealBytes] = {};
  RWKV_CHECK(::pread(file.get(), seal, kSealBytes, 0) == static_cast<ssize_t>(kSealBytes), path,
             ": cannot read the user block");
  for (unsigned char byte : seal) RWKV_CHECK(byte == 0, path, ": the first ", kSealBytes, " bytes are not a free user block");
  std::memcpy(seal, kSealMagic, sizeof kSealMagic);
  store_le<uint64_t>(seal + 8, kSealVersion);
  store_le<uint64_t>(seal + 16, length);
  store_le<uint64_t>(seal + 24, checksum_after_seal(file.get(), length, path));
  const ssize_t written = ::pwrite(file.get(), seal, kSealBytes, 0);
  RWKV_CHECK(written == static_cast<ssize_t>(kSealBytes), path, ": cannot write the seal: ",
             written < 0 ? std::strerror(errno) : "short write");
}

void check_seal(const std::string& path) {
  const Fd file(path, O_RDONLY);
  struct stat info {};
  RWKV_CHECK(::fstat(file.get(), &info) == 0, path, ": cannot stat: ", std::strerror(errno));
  unsigned char seal[kSealBytes] = {};
  if (info.st_size < static_cast<off_t>(kSealBytes) ||
      ::pread(file.get(), seal, kSealBytes, 0) != static_cast<ssize_t>(kSealBytes) ||
      std::memcmp(seal, kSealMagic, sizeof kSealMagic) != 0) {
    return;  // not sealed
  }
  const FileIdentity identity{info.st_dev, info.st_ino, info.st_size, info.st_mtim.tv_sec, info.st_mtim.tv_nsec};
  {
    const std::lock_guard<std::mutex> lock(verified_mutex);
    if (verified_files().count(identity)) return;
  }
  const uint64_t version = load_le<uint64_t>(seal + 8), length = load_le<uint64_t>(seal + 16);
  const uint64_t stored = load_le<uint64_t>(seal + 24);
  RWKV_CHECK(version == kSealVersion, path, ": damaged seal or a newer format: seal version ", version,
             " (this build writes ", kSealVersion, ")");
  const uint64_t actual = static_cast<uint64_t>(info.st_size);
  RWKV_CHECK(actual == length, path, ": damaged: ", actual < length ? "truncated" : "longer than written",
             ": its seal records ", length, " bytes but the file has ", actual,
             " (an interrupted copy, a damaged disk or an edit)");
  const uint64_t computed = checksum_after_seal(file.get(), length, path);
  RWKV_CHECK(computed == stored, path, ": damaged: the checksum of its contents does not match its seal (",
             "the file changed after it was written: a bad copy, a damaged disk or an edit; to use an edited file ",
             "anyway, zero its first 8 bytes to remove the seal)");
  const std::lock_guard<std::mutex> lock(verified_mutex);
  verified_files().insert(identity);
}

}  // namespace rwkv
