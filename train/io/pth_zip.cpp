#include "train/io/pth_zip.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/little_endian.h"

namespace rwkv::pth {

namespace {

// ---- CRC-32, slicing by 8 (about 1-2 GB/s: the check must not dominate reading a large model) ----

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

CrcTables make_crc_tables() {
  CrcTables tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    tables[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (size_t t = 1; t < 8; ++t) tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][tables[t - 1][i] & 0xFFu];
  }
  return tables;
}

const CrcTables& crc_tables() {
  static const CrcTables tables = make_crc_tables();
  return tables;
}

// ---- zip record constants (APPNOTE.TXT) ----

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kPaddingExtraId = 0x4246;  // "FB", torch's alignment padding
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint16_t kVersionPlain = 20;
constexpr uint16_t kVersionZip64 = 45;
constexpr uint16_t kDosDate1980 = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: the earliest valid zip date

class Bytes {
public:
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void text(const std::string& s) { out_.insert(out_.end(), s.begin(), s.end()); }
  void fill(uint8_t byte, size_t count) { out_.insert(out_.end(), count, byte); }
  const std::vector<uint8_t>& data() const { return out_; }
  size_t size() const { return out_.size(); }

private:
  void put(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

uint16_t le16(const uint8_t* p) { return load_le<uint16_t>(p); }
uint32_t le32(const uint8_t* p) { return load_le<uint32_t>(p); }
uint64_t le64(const uint8_t* p) { return load_le<uint64_t>(p); }

std::string errno_text() { return std::strerror(errno); }

}  // namespace

uint32_t crc32(const void* data, size_t size, uint32_t crc) {
  const CrcTables& t = crc_tables();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  while (size >= 8) {
    const uint32_t lo = crc ^ le32(p);
    const uint32_t hi = le32(p + 4);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
          t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

// ================================ writer ================================

ZipWriter::ZipWriter(std::string path, ZipWriterOptions options)
    : path_(std::move(path)), temp_path_(path_ + ".tmp-" + std::to_string(::getpid())), options_(options) {
  RWKV_CHECK(options_.alignment >= 1 && options_.alignment <= 4096, "zip writer: alignment ", options_.alignment,
             " must be in [1, 4096]");
  file_ = std::fopen(temp_path_.c_str(), "wb");
  RWKV_CHECK(file_ != nullptr, temp_path_, ": cannot create (", errno_text(), ")");
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
}

ZipWriter::~ZipWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) std::remove(temp_path_.c_str());
}

void ZipWriter::write(const void* data, size_t size) {
  if (size == 0) return;
  RWKV_CHECK(std::fwrite(data, 1, size, file_) == size, temp_path_, ": write failed at byte ", offset_, " (",
             errno_text(), ")");
  offset_ += size;
}

void ZipWriter::add(const std::string& name, std::span<const uint8_t> data) {
  RWKV_CHECK(!finished_, "zip writer: ", path_, ": add after finish");
  RWKV_CHECK(!name.empty() && name.size() < 0xFFFF, "zip writer: ", path_, ": bad entry name '", name, "'");
  Entry entry{name, offset_, data.size(), crc32(data.data(), data.size())};
  const bool zip64_size = needs_zip64(entry.size);

  // Local header, then an optional zip64 extra (both sizes) and the padding extra that aligns the data.
  Bytes header;
  header.u32(kLocalHeaderSignature);
  header.u16(zip64_size ? kVersionZip64 : kVersionPlain);
  header.u16(0);  // flags: sizes and CRC are in this header (no data descriptor)
  header.u16(0);  // method: stored
  header.u16(0);  // time
  header.u16(kDosDate1980);
  header.u32(entry.crc);
  header.u32(zip64_size ? 0xFFFFFFFFu : static_cast<uint32_t>(entry.size));
  header.u32(zip64_size ? 0xFFFFFFFFu : static_cast<uint32_t>(entry.size));
  header.u16(static_cast<uint16_t>(name.size()));
  const size_t zip64_extra = zip64_size ? 4 + 16 : 0;
  const uint64_t unpadded = offset_ + kLocalHeaderSize + name.size() + zip64_extra;
  size_t padding = 0;
  if (unpadded % options_.alignment != 0) {
    padding = static_cast<size_t>(options_.alignment - unpadded % options_.alignment);
    while (padding < 4) padding += static_cast<size_t>(options_.alignment);  // room for the extra's own header
  }
  header.u16(static_cast<uint16_t>(zip64_extra + padding));
  header.text(name);
  if (zip64_size) {
    header.u16(kZip64ExtraId);
    header.u16(16);
    header.u64(entry.size);
    header.u64(entry.size);
  }
  if (padding > 0) {
    header.u16(kPaddingExtraId);
    header.u16(static_cast<uint16_t>(padding - 4));
    header.fill('Z', padding - 4);
  }
  write(header.data().data(), header.size());
  write(data.data(), data.size());
  entries_.push_back(std::move(entry));
}

void ZipWriter::finish() {
  RWKV_CHECK(!finished_, "zip writer: ", path_, ": finished twice");
  const uint64_t directory_offset = offset_;
  for (const Entry& entry : entries_) {
    const bool big_size = needs_zip64(entry.size), big_offset = needs_zip64(entry.header_offset);
    Bytes header;
    header.u32(kCentralHeaderSignature);
    header.u16(kVersionZip64);  // made by
    header.u16(big_size || big_offset ? kVersionZip64 : kVersionPlain);
    header.u16(0);
    header.u16(0);
    header.u16(0);
    header.u16(kDosDate1980);
    header.u32(entry.crc);
    header.u32(big_size ? 0xFFFFFFFFu : static_cast<uint32_t>(entry.size));
    header.u32(big_size ? 0xFFFFFFFFu : static_cast<uint32_t>(entry.size));
    header.u16(static_cast<uint16_t>(entry.name.size()));
    const uint16_t extra = static_cast<uint16_t>((big_size ? 16 : 0) + (big_offset ? 8 : 0));
    header.u16(extra > 0 ? static_cast<uint16_t>(4 + extra) : 0);
    header.u16(0);  // comment
    header.u16(0);  // disk
    header.u16(0);  // internal attributes
    header.u32(0);  // external attributes
    header.u32(big_offset ? 0xFFFFFFFFu : static_cast<uint32_t>(entry.header_offset));
    header.text(entry.name);
    if (extra > 0) {
      header.u16(kZip64ExtraId);
      header.u16(extra);
      if (big_size) {
        header.u64(entry.size);
        header.u64(entry.size);
      }
      if (big_offset) header.u64(entry.header_offset);
    }
    write(header.data().data(), header.size());
  }
  const uint64_t directory_size = offset_ - directory_offset;
  const uint64_t count = entries_.size();
  const bool zip64_end = count >= 0xFFFF || needs_zip64(directory_offset) || needs_zip64(directory_size);

  Bytes end;
  if (zip64_end) {
    const uint64_t zip64_end_offset = offset_;
    end.u32(kZip64EndSignature);
    end.u64(kZip64EndSize - 12);  // size of the rest of this record
    end.u16(kVersionZip64);
    end.u16(kVersionZip64);
    end.u32(0);
    end.u32(0);
    end.u64(count);
    end.u64(count);
    end.u64(directory_size);
    end.u64(directory_offset);
    end.u32(kZip64LocatorSignature);
    end.u32(0);
    end.u64(zip64_end_offset);
    end.u32(1);
  }
  end.u32(kEndSignature);
  end.u16(0);
  end.u16(0);
  end.u16(zip64_end ? 0xFFFF : static_cast<uint16_t>(count));
  end.u16(zip64_end ? 0xFFFF : static_cast<uint16_t>(count));
  end.u32(zip64_end ? 0xFFFFFFFFu : static_cast<uint32_t>(directory_size));
  end.u32(zip64_end ? 0xFFFFFFFFu : static_cast<uint32_t>(directory_offset));
  end.u16(0);
  write(end.data().data(), end.size());

  RWKV_CHECK(std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0, temp_path_, ": flush failed (",
             errno_text(), ")");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  RWKV_CHECK(closed == 0, temp_path_, ": close failed (", errno_text(), ")");
  RWKV_CHECK(std::rename(temp_path_.c_str(), path_.c_str()) == 0, "cannot rename ", temp_path_, " to ", path_,
             " (", errno_text(), ")");
  finished_ = true;
}

// ================================ reader ================================

ZipReader::ZipReader(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  RWKV_CHECK(fd >= 0, path, ": cannot open (", errno_text(), ")");
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    RWKV_FAIL(path, ": not a regular file");
  }
  size_ = static_cast<uint64_t>(info.st_size);
  if (size_ > 0) {
    void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const std::string reason = errno_text();
      ::close(fd);
      RWKV_FAIL(path, ": cannot map the file (", reason, ")");
    }
    data_ = static_cast<const uint8_t*>(mapping);
  }
  ::close(fd);
  try {
    parse_central_directory();
  } catch (...) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    throw;
  }
}

ZipReader::~ZipReader() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void ZipReader::parse_central_directory() {
  const bool starts_like_zip = size_ >= 4 && le32(data_) == kLocalHeaderSignature;
  // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
  uint64_t end_at = UINT64_MAX;
  if (size_ >= kEndSize) {
    const uint64_t lowest = size_ > kEndSize + 0xFFFF ? size_ - kEndSize - 0xFFFF : 0;
    for (uint64_t at = size_ - kEndSize + 1; at-- > lowest;) {
      if (le32(data_ + at) == kEndSignature && at + kEndSize + le16(data_ + at + 20) == size_) {
        end_at = at;
        break;
      }
    }
  }
  if (end_at == UINT64_MAX) {
    RWKV_CHECK(!starts_like_zip, path_,
               ": truncated zip archive (it starts with a zip entry but has no end-of-central-directory record)");
    RWKV_FAIL(path_, ": not a zip archive (no end-of-central-directory record)");
  }
  const uint8_t* end = data_ + end_at;
  uint64_t count = le16(end + 10);
  uint64_t directory_size = le32(end + 12);
  uint64_t directory_offset = le32(end + 16);
  RWKV_CHECK(le16(end + 4) == 0 && le16(end + 6) == 0, path_, ": multi-disk zip archives are not supported");
  if (count == 0xFFFF || directory_size == 0xFFFFFFFFu || directory_offset == 0xFFFFFFFFu) {
    RWKV_CHECK(end_at >= kZip64LocatorSize + kZip64EndSize && le32(end - kZip64LocatorSize) == kZip64LocatorSignature,
               path_,
               ": the end record asks for ZIP64 but there is no ZIP64 locator before it");
    const uint64_t zip64_end_at = le64(end - kZip64LocatorSize + 8);
    RWKV_CHECK(zip64_end_at <= end_at - kZip64LocatorSize - kZip64EndSize &&
                   le32(data_ + zip64_end_at) == kZip64EndSignature,
               path_, ": the ZIP64 locator points to offset ", zip64_end_at, ", where there is no ZIP64 end record");
    const uint8_t* zip64_end = data_ + zip64_end_at;
    count = le64(zip64_end + 32);
    directory_size = le64(zip64_end + 40);
    directory_offset = le64(zip64_end + 48);
  }
  RWKV_CHECK(directory_offset <= end_at && directory_size <= end_at - directory_offset, path_,
             ": truncated or corrupt zip archive (the central directory at offset ", directory_offset, ", ",
             directory_size, " bytes, lies outside the file of ", size_, " bytes)");

  uint64_t at = directory_offset;
  const uint64_t directory_end = directory_offset + directory_size;
  for (uint64_t i = 0; i < count; ++i) {
    RWKV_CHECK(at + kCentralHeaderSize <= directory_end && le32(data_ + at) == kCentralHeaderSignature, path_,
               ": corrupt zip central directory (entry ", i, " of ", count, " at offset ", at, ")");
    const uint8_t* h = data_ + at;
    const uint16_t flags = le16(h + 8), method = le16(h + 10);
    const uint32_t crc = le32(h + 16);
    uint64_t compressed = le32(h + 20), size = le32(h + 24);
    const uint16_t name_length = le16(h + 28), extra_length = le16(h + 30), comment_length = le16(h + 32);
    uint64_t header_offset = le32(h + 42);
    RWKV_CHECK(at + kCentralHeaderSize + name_length + extra_length + comment_length <= directory_end, path_,
               ": corrupt zip central directory (entry ", i, " runs past its end)");
    std::string name(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_length);
    // ZIP64 extra: the 64-bit values of exactly the fields that hold 0xFFFFFFFF, in this order.
    const uint8_t* extra = h + kCentralHeaderSize + name_length;
    for (size_t e = 0; e + 4 <= extra_length;) {
      const uint16_t id = le16(extra + e), length = le16(extra + e + 2);
      RWKV_CHECK(e + 4 + length <= extra_length, path_, ": ", name, ": corrupt extra field in the central directory");
      if (id == kZip64ExtraId) {
        size_t field = e + 4;
        auto next = [&](uint64_t& value) {
          RWKV_CHECK(field + 8 <= e + 4 + length, path_, ": ", name, ": ZIP64 extra field too short");
          value = le64(extra + field);
          field += 8;
        };
        if (size == 0xFFFFFFFFu) next(size);
        if (compressed == 0xFFFFFFFFu) next(compressed);
        if (header_offset == 0xFFFFFFFFu) next(header_offset);
      }
      e += 4 + length;
    }
    RWKV_CHECK((flags & 1u) == 0, path_, ": ", name, ": encrypted zip entries are not supported");
    RWKV_CHECK(method == 0 && compressed == size, path_, ": ", name, ": compressed zip entry (method ", method,
               "); torch.save writes uncompressed entries only");
    RWKV_CHECK(header_offset <= size_ - std::min<uint64_t>(size_, kLocalHeaderSize) &&
                   le32(data_ + header_offset) == kLocalHeaderSignature,
               path_, ": ", name, ": no local zip header at offset ", header_offset, " (truncated or corrupt file)");
    const uint64_t data_offset =
        header_offset + kLocalHeaderSize + le16(data_ + header_offset + 26) + le16(data_ + header_offset + 28);
    RWKV_CHECK(data_offset <= size_ && size <= size_ - data_offset, path_, ": ", name,
               ": truncated file (the entry's ", size, " bytes at offset ", data_offset, " end past the file's ",
               size_, " bytes)");
    entries_.push_back(ZipEntry{std::move(name), data_offset, size, crc});
    at += kCentralHeaderSize + name_length + extra_length + comment_length;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  for (const ZipEntry& entry : entries_) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::span<const uint8_t> ZipReader::read(const ZipEntry& entry) const {
  std::span<const uint8_t> bytes(data_ + entry.data_offset, entry.size);
  const uint32_t actual = crc32(bytes.data(), bytes.size());
  RWKV_CHECK(actual == entry.crc32, path_, ": ", entry.name, ": CRC-32 mismatch (stored ", entry.crc32,
             ", computed ", actual, "): the file is corrupt");
  return bytes;
}

}  // namespace rwkv::pth
