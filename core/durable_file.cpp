#include "core/durable_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/error.h"

namespace rwkv {

namespace {

std::string parent_directory(const std::string& path) {
  const std::filesystem::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
void write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    RWKV_CHECK(written > 0, "cannot write '", path, "': ", written < 0 ? std::strerror(errno) : "no space written");
    bytes.remove_prefix(static_cast<size_t>(written));
  }
}

}  // namespace

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY | O_CLOEXEC : O_RDONLY | O_CLOEXEC);
  RWKV_CHECK(fd >= 0, "cannot open '", path, "' to sync it to disk: ", std::strerror(errno));
  const int status = ::fsync(fd);
  const int saved_errno = errno;
  ::close(fd);
  RWKV_CHECK(status == 0, "fsync of '", path, "' failed (disk full or I/O error?): ", std::strerror(saved_errno));
}

std::string temporary_path_for(const std::string& path) { return path + ".tmp-" + std::to_string(::getpid()); }

void remove_stale_temporaries(const std::string& directory, const std::function<bool(std::string_view)>& ours) {
  namespace fs = std::filesystem;
  std::error_code error;
  for (fs::directory_iterator item(directory, error), end; !error && item != end; item.increment(error)) {
    const std::string name = item->path().filename().string();
    const size_t mark = name.rfind(".tmp-");
    if (mark == std::string::npos || mark == 0 || !ours(std::string_view(name).substr(0, mark))) continue;
    const std::string pid_text = name.substr(mark + 5);
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid == ::getpid() || pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    fs::remove(item->path(), ignored);
  }
}

void replace_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string temporary = temporary_path_for(path);
  try {
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    RWKV_CHECK(fd >= 0, "cannot create '", temporary, "': ", std::strerror(errno));
    try {
      write_all(fd, bytes, temporary);
      RWKV_CHECK(::fsync(fd) == 0, "fsync of '", temporary, "' failed: ", std::strerror(errno));
    } catch (...) {
      ::close(fd);
      throw;
    }
    RWKV_CHECK(::close(fd) == 0, "cannot close '", temporary, "': ", std::strerror(errno));
    RWKV_CHECK(::rename(temporary.c_str(), path.c_str()) == 0, "cannot rename '", temporary, "' to '", path,
               "': ", std::strerror(errno));
  } catch (...) {
    ::unlink(temporary.c_str());  // the old file, if any, is untouched
    throw;
  }
  fsync_path(parent_directory(path), true);  // the rename itself survives a power loss
}

AppendOnlyFile::AppendOnlyFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  RWKV_CHECK(fd_ >= 0, "cannot open '", path, "' for appending: ", std::strerror(errno));
}

AppendOnlyFile::AppendOnlyFile(AppendOnlyFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

AppendOnlyFile& AppendOnlyFile::operator=(AppendOnlyFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

AppendOnlyFile::~AppendOnlyFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendOnlyFile::append(std::string_view record) {
  RWKV_CHECK(fd_ >= 0, "append to a closed log");
  write_all(fd_, record, path_);
}

void AppendOnlyFile::sync() {
  RWKV_CHECK(fd_ >= 0, "sync of a closed log");
  RWKV_CHECK(::fsync(fd_) == 0, "fsync of '", path_, "' failed (disk full or I/O error?): ", std::strerror(errno));
}

}  // namespace rwkv
