#include "data/binidx_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include "core/error.h"
#include "data/binidx.h"

namespace rwkv::data {
namespace {

constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

class OutputFile {
public:
  explicit OutputFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    RWKV_CHECK(fd_ >= 0, "cannot create ", path_, ": ", std::strerror(errno));
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  void write(const void* data, std::size_t n) {
    const auto* bytes = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t written = ::write(fd_, bytes, n);
      if (written < 0 && errno == EINTR) continue;
      RWKV_CHECK(written > 0, "error writing ", path_, ": ", std::strerror(errno));
      bytes += written;
      n -= static_cast<std::size_t>(written);
    }
  }
  void sync_and_close() {
    RWKV_CHECK(::fsync(fd_) == 0, "cannot fsync ", path_, ": ", std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    RWKV_CHECK(::close(fd) == 0, "error closing ", path_, ": ", std::strerror(errno));
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
  int fd_ = -1;
};

void sync_directory_of(const std::string& path) {
  std::string directory = std::filesystem::path(path).parent_path().string();
  if (directory.empty()) directory = ".";
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  RWKV_CHECK(fd >= 0, "cannot open directory ", directory, ": ", std::strerror(errno));
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  RWKV_CHECK(result == 0, "cannot fsync directory ", directory, ": ", std::strerror(error));
}

void rename_or_throw(const std::string& from, const std::string& to) {
  RWKV_CHECK(std::rename(from.c_str(), to.c_str()) == 0, "cannot rename ", from, " to ", to, ": ",
             std::strerror(errno));
}

template <typename T>
void append_as(std::vector<std::byte>& buffer, T value) {
  const std::size_t at = buffer.size();
  buffer.resize(at + sizeof(T));
  std::memcpy(buffer.data() + at, &value, sizeof(T));
}

}  // namespace

struct BinidxWriter::State {
  std::string prefix;
  TokenDtype dtype;
  OutputFile bin;
  std::vector<std::byte> pending;   // encoded tokens not yet written
  std::vector<std::int32_t> sizes;  // per document, for the index
  std::uint64_t tokens = 0;
  bool finished = false;

  State(std::string prefix_, TokenDtype dtype_)
      : prefix(std::move(prefix_)), dtype(dtype_), bin(prefix + ".bin.partial") {}
};

BinidxWriter BinidxWriter::open(const std::string& prefix, TokenDtype dtype) {
  binidx_code(dtype);  // throws for dtypes binidx cannot record
  return BinidxWriter(std::make_unique<State>(prefix, dtype));
}

BinidxWriter::BinidxWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
BinidxWriter::BinidxWriter(BinidxWriter&&) noexcept = default;

BinidxWriter::~BinidxWriter() {
  if (state_ && !state_->finished) {
    const std::string prefix = state_->prefix;
    state_.reset();  // closes the file first
    std::remove((prefix + ".bin.partial").c_str());
    std::remove((prefix + ".idx.partial").c_str());
  }
}

std::uint64_t BinidxWriter::documents() const { return state_->sizes.size(); }
std::uint64_t BinidxWriter::tokens() const { return state_->tokens; }

template <typename Id>
void BinidxWriter::add(std::span<const Id> ids) {
  State& s = *state_;
  RWKV_CHECK(!s.finished, "binidx writer ", s.prefix, ": add_document after finish");
  RWKV_CHECK(ids.size() <= std::size_t(std::numeric_limits<std::int32_t>::max()), "binidx writer ", s.prefix,
             ": document ", s.sizes.size(), " has ", ids.size(), " tokens, more than an int32 size can record");
  const std::uint64_t largest = max_token_id(s.dtype);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const bool negative = std::is_signed_v<Id> && ids[i] < 0;
    RWKV_CHECK(!negative && static_cast<std::uint64_t>(ids[i]) <= largest, "binidx writer ", s.prefix, ": token id ",
               ids[i], " (document ", s.sizes.size(), ", position ", i, ") does not fit dtype ", dtype_name(s.dtype),
               " (0..", largest, ")");
  }
  with_token_type(s.dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::size_t at = s.pending.size();
    s.pending.resize(at + ids.size() * sizeof(T));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const T value = static_cast<T>(ids[i]);
      std::memcpy(s.pending.data() + at + i * sizeof(T), &value, sizeof(T));
    }
  });
  if (s.pending.size() >= kFlushBytes) {
    s.bin.write(s.pending.data(), s.pending.size());
    s.pending.clear();
  }
  s.sizes.push_back(static_cast<std::int32_t>(ids.size()));
  s.tokens += ids.size();
}

void BinidxWriter::add_document(std::span<const std::int32_t> ids) { add(ids); }
void BinidxWriter::add_document(std::span<const std::uint32_t> ids) { add(ids); }
void BinidxWriter::add_document(std::span<const std::int64_t> ids) { add(ids); }

BinidxSummary BinidxWriter::finish() {
  State& s = *state_;
  RWKV_CHECK(!s.finished, "binidx writer ", s.prefix, ": finish called twice");
  s.bin.write(s.pending.data(), s.pending.size());
  s.pending = {};
  s.bin.sync_and_close();

  const std::uint64_t n = s.sizes.size();
  const std::string idx_partial = s.prefix + ".idx.partial";
  std::uint64_t idx_bytes = 0;
  {
    OutputFile idx(idx_partial);
    std::vector<std::byte> buffer(sizeof kBinidxMagic);
    std::memcpy(buffer.data(), kBinidxMagic, sizeof kBinidxMagic);
    append_as<std::uint64_t>(buffer, 1);  // version
    append_as<std::uint8_t>(buffer, binidx_code(s.dtype));
    append_as<std::uint64_t>(buffer, n);      // sequences
    append_as<std::uint64_t>(buffer, n + 1);  // doc_idx entries: one document per sequence
    const auto flush = [&](std::size_t threshold) {
      if (buffer.size() < threshold) return;
      idx.write(buffer.data(), buffer.size());
      idx_bytes += buffer.size();
      buffer.clear();
    };
    for (std::int32_t size : s.sizes) {
      append_as(buffer, size);
      flush(kFlushBytes);
    }
    std::int64_t pointer = 0;
    const auto item = static_cast<std::int64_t>(itemsize(s.dtype));
    for (std::int32_t size : s.sizes) {
      append_as(buffer, pointer);
      pointer += std::int64_t{size} * item;
      flush(kFlushBytes);
    }
    for (std::uint64_t document = 0; document <= n; ++document) {
      append_as(buffer, static_cast<std::int64_t>(document));
      flush(kFlushBytes);
    }
    flush(0);
    idx.sync_and_close();
  }

  // Publish: the old index goes first and the new one last, so no moment shows a stale or early .idx.
  const std::string idx_path = s.prefix + ".idx";
  const std::string bin_path = s.prefix + ".bin";
  RWKV_CHECK(std::remove(idx_path.c_str()) == 0 || errno == ENOENT, "cannot remove the old ", idx_path, ": ",
             std::strerror(errno));
  sync_directory_of(idx_path);
  rename_or_throw(s.bin.path(), bin_path);
  sync_directory_of(bin_path);
  rename_or_throw(idx_partial, idx_path);
  sync_directory_of(idx_path);
  s.finished = true;

  BinidxSummary summary;
  summary.prefix = s.prefix;
  summary.dtype = s.dtype;
  summary.documents = n;
  summary.tokens = s.tokens;
  summary.bin_bytes = s.tokens * itemsize(s.dtype);
  summary.idx_bytes = idx_bytes;
  return summary;
}

}  // namespace rwkv::data
