// A whole file mapped read-only into memory (POSIX mmap). Token data is read straight from the page
// cache: no copy of the token stream is ever made, so datasets larger than RAM work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rwkv::data {

class MappedFile {
public:
  // Throws rwkv::Error naming the path and the OS error when the file cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  // nullptr for an empty file (mmap cannot map zero bytes).
  const std::byte* data() const { return data_; }

private:
  MappedFile(std::string path, const std::byte* data, std::uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
};

}  // namespace rwkv::data
