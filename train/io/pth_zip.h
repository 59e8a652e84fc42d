// The zip container of torch.save's format (PyTorch >= 1.6): uncompressed ("stored") entries whose data start on
// 64-byte boundaries (padding in an extra field, as torch does), CRC-32 checked on read, and ZIP64 records
// whenever a size or offset does not fit 32 bits (a 3B model in fp32 is a 12 GB file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace rwkv::pth {

// CRC-32 (ISO-HDLC, as zip uses). Pass the previous result as `crc` to continue over several pieces.
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

struct ZipWriterOptions {
  // Sizes and offsets above this use ZIP64 fields; 0 forces ZIP64 everywhere (tests exercise that path).
  uint64_t zip64_threshold = 0xFFFFFFFEull;
  uint64_t alignment = 64;  // entry data start at a multiple of this (torch's kFieldAlignment)
};

// Writes a zip archive atomically: everything goes to a temporary file next to `path`, which finish() renames
// onto `path`. A writer destroyed before finish() (an error on the way) removes the temporary file, so a partial
// archive never appears under the final name.
class ZipWriter {
public:
  explicit ZipWriter(std::string path, ZipWriterOptions options = {});
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  void add(const std::string& name, std::span<const uint8_t> data);
  void finish();  // central directory, end records, fsync, rename; throws on any I/O error
  uint64_t bytes_written() const { return offset_; }

private:
  struct Entry {
    std::string name;
    uint64_t header_offset;
    uint64_t size;
    uint32_t crc;
  };
  void write(const void* data, size_t size);
  bool needs_zip64(uint64_t value) const { return value > options_.zip64_threshold; }

  std::string path_;
  std::string temp_path_;
  ZipWriterOptions options_;
  std::FILE* file_ = nullptr;
  uint64_t offset_ = 0;
  std::vector<Entry> entries_;
  bool finished_ = false;
};

struct ZipEntry {
  std::string name;
  uint64_t data_offset;  // in the file
  uint64_t size;
  uint32_t crc32;
};

// A zip archive mapped into memory. Every problem (not a zip, truncated, compressed or encrypted entries, CRC
// mismatch) throws rwkv::Error naming the file and the entry.
class ZipReader {
public:
  explicit ZipReader(const std::string& path);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent
  // The entry's bytes (a view of the mapping, valid while the reader lives); its CRC-32 is checked first.
  std::span<const uint8_t> read(const ZipEntry& entry) const;

private:
  void parse_central_directory();

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::vector<ZipEntry> entries_;
};

}  // namespace rwkv::pth
