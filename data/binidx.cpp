#include "data/binidx.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "data/mapped_file.h"
#include "core/little_endian.h"

namespace rwkv::data {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string hex_bytes(const std::byte* bytes, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string text;
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned>(bytes[i]);
    if (i > 0) text += ' ';
    text += digits[b >> 4];
    text += digits[b & 15];
  }
  return text;
}

BinidxHeader parse_header(const MappedFile& idx) {
  const std::string& path = idx.path();
  RWKV_CHECK(idx.size() >= kBinidxHeaderBytes, path, ": truncated binidx index: ", idx.size(),
             " bytes, the header alone needs ", kBinidxHeaderBytes);
  const std::byte* bytes = idx.data();
  RWKV_CHECK(std::memcmp(bytes, kBinidxMagic, sizeof kBinidxMagic) == 0, path,
             ": bad magic (not a Megatron/GPT-NeoX binidx index): expected 4d 4d 49 44 49 44 58 00 00 "
             "(\"MMIDIDX\\0\\0\"), found ",
             hex_bytes(bytes, sizeof kBinidxMagic));
  const auto version = load_le<std::uint64_t>(bytes + 9);
  RWKV_CHECK(version == 1, path, ": unsupported binidx version ", version, " (only version 1 exists)");
  const auto code = static_cast<std::uint8_t>(bytes[17]);
  const std::optional<TokenDtype> dtype = dtype_from_binidx_code(code);
  if (!dtype) {
    if (code == 6 || code == 7) {
      RWKV_FAIL(path, ": dtype code ", int(code), " is float64, not a token type; token data needs an integer ",
                "dtype (codes 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16)");
    }
    RWKV_FAIL(path, ": unknown dtype code ", int(code),
              " (known integer codes: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16)");
  }
  BinidxHeader header;
  header.dtype = *dtype;
  header.sequences = load_le<std::uint64_t>(bytes + 18);
  header.doc_idx_size = load_le<std::uint64_t>(bytes + 26);
  // 128-bit arithmetic: absurd counts in a corrupt header must not overflow the size computation.
  __extension__ using u128 = unsigned __int128;
  const u128 described = u128{kBinidxHeaderBytes} + u128{12} * header.sequences + u128{8} * header.doc_idx_size;
  if (described != idx.size()) {
    RWKV_FAIL(path, ": ", (described > idx.size() ? "truncated" : "longer than its header describes"),
              ": the header says ", header.sequences, " sequences and ", header.doc_idx_size,
              " doc_idx entries, which take 34 + 12*N + 8*M = ",
              (described > std::numeric_limits<std::uint64_t>::max() ? std::string("more than 2^64")
                                                                     : std::to_string(std::uint64_t(described))),
              " bytes, but the file has ", idx.size(), " bytes");
  }
  return header;
}

// Checks sizes/pointers/doc_idx and returns the number of .bin bytes they describe.
std::uint64_t check_index_arrays(const MappedFile& idx, const BinidxHeader& header) {
  const std::string& path = idx.path();
  const std::uint64_t n = header.sequences;
  const std::byte* sizes = idx.data() + kBinidxHeaderBytes;
  const std::byte* pointers = sizes + 4 * n;
  const std::byte* doc_idx = pointers + 8 * n;
  const auto item = static_cast<std::int64_t>(itemsize(header.dtype));
  auto size_at = [&](std::uint64_t i) { return load_le<std::int32_t>(sizes + 4 * i); };
  auto pointer_at = [&](std::uint64_t i) { return load_le<std::int64_t>(pointers + 8 * i); };
  auto doc_at = [&](std::uint64_t i) { return load_le<std::int64_t>(doc_idx + 8 * i); };

  // pointer[i] must be pointer[i-1] + size[i-1]·itemsize (unsigned, so corrupt values cannot overflow).
  auto expected_pointer = [&](std::uint64_t i) -> std::uint64_t {
    return i == 0 ? 0 : std::uint64_t(pointer_at(i - 1)) + std::uint64_t(std::int64_t{size_at(i - 1)} * item);
  };
  // Every entry is checked independently, so the loop runs in parallel and reports the first bad one.
  std::uint64_t first_bad = n;
  const auto count = static_cast<std::int64_t>(n);
#pragma omp parallel for reduction(min : first_bad) schedule(static)
  for (std::int64_t i = 0; i < count; ++i) {
    const auto u = static_cast<std::uint64_t>(i);
    if (size_at(u) < 0 || std::uint64_t(pointer_at(u)) != expected_pointer(u)) first_bad = std::min(first_bad, u);
  }
  if (first_bad < n) {
    const std::uint64_t i = first_bad;
    RWKV_CHECK(size_at(i) >= 0, path, ": sequence ", i, " has negative size ", size_at(i));
    RWKV_FAIL(path, ": sizes and pointers disagree at sequence ", i, ": pointer ", pointer_at(i), ", expected ",
              (i == 0 ? std::string("0 (the first pointer)")
                      : detail::concat(expected_pointer(i), " = pointer[", i - 1, "] + size[", i - 1, "]*", item)));
  }
  std::int64_t previous = 0;
  for (std::uint64_t i = 0; i < header.doc_idx_size; ++i) {
    const std::int64_t value = doc_at(i);
    RWKV_CHECK(value >= previous && static_cast<std::uint64_t>(value) <= n, path, ": doc_idx[", i, "] = ", value,
               " is ", (value < previous ? "smaller than the entry before it" : "larger than the sequence count"), " (",
               n, " sequences)");
    previous = value;
  }
  return expected_pointer(n);
}

}  // namespace

std::string binidx_prefix(const std::string& path) {
  if (ends_with(path, ".bin") || ends_with(path, ".idx")) return path.substr(0, path.size() - 4);
  return path;
}

TokenShard open_binidx_shard(const std::string& prefix) {
  const std::shared_ptr<const MappedFile> idx = MappedFile::open(prefix + ".idx");
  const BinidxHeader header = parse_header(*idx);
  const std::uint64_t described = check_index_arrays(*idx, header);
  std::shared_ptr<const MappedFile> bin = MappedFile::open(prefix + ".bin");
  RWKV_CHECK(bin->size() == described, bin->path(), " has ", bin->size(), " bytes but ", idx->path(), " describes ",
             described, " (", header.sequences, " sequences of ", dtype_name(header.dtype), "): the .bin is ",
             (bin->size() < described ? "truncated" : "longer than its index"), " or does not belong to this .idx");
  TokenShard shard;
  shard.path = bin->path();
  shard.dtype = header.dtype;
  shard.tokens = bin->data();
  shard.size = bin->size() / itemsize(header.dtype);
  shard.documents = header.doc_idx_size > 0 ? header.doc_idx_size - 1 : header.sequences;
  shard.owner = std::move(bin);
  return shard;
}

}  // namespace rwkv::data
