#include "data/npy.h"

#include <cstring>
#include <map>
#include <variant>
#include <vector>

#include "core/error.h"
#include "data/mapped_file.h"
#include "core/little_endian.h"

namespace rwkv::data {
namespace {

// The header is a Python dict literal, e.g. {'descr': '<u2', 'fortran_order': False, 'shape': (1000,), }.
// This parses exactly the subset NumPy writes: string keys; values that are strings, True/False, or
// tuples of non-negative integers.
using HeaderValue = std::variant<std::string, bool, std::vector<std::uint64_t>>;

class HeaderParser {
public:
  HeaderParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  std::map<std::string, HeaderValue> parse_dict() {
    std::map<std::string, HeaderValue> dict;
    expect('{');
    while (peek() != '}') {
      std::string key = parse_string();
      expect(':');
      dict[key] = parse_value(key);
      if (peek() != ',') break;
      ++pos_;
    }
    expect('}');
    return dict;
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    RWKV_FAIL(path_, ": bad .npy header (", what, " at character ", pos_, "): ", text_);
  }
  char peek() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    if (pos_ >= text_.size()) fail("unexpected end");
    return text_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string");
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }
  std::uint64_t parse_integer() {
    peek();
    std::uint64_t value = 0;
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (value > (UINT64_MAX - 9) / 10) fail("dimension too large");
      value = value * 10 + std::uint64_t(text_[pos_++] - '0');
    }
    if (pos_ == start) fail("expected a dimension");
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 long literal
    return value;
  }
  HeaderValue parse_value(const std::string& key) {
    const char c = peek();
    if (c == '\'' || c == '"') return parse_string();
    for (const bool flag : {true, false}) {
      const std::string_view word = flag ? "True" : "False";
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return flag;
      }
    }
    if (c == '(') {
      ++pos_;
      std::vector<std::uint64_t> dims;
      while (peek() != ')') {
        dims.push_back(parse_integer());
        if (peek() != ',') break;
        ++pos_;
      }
      expect(')');
      return dims;
    }
    fail("unsupported value for '" + key + "' (structured dtypes are not token data)");
  }

  std::string_view text_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

TokenDtype dtype_from_descr(const std::string& descr, const std::string& path) {
  RWKV_CHECK(descr.size() >= 3, path, ": unsupported dtype '", descr, "'");
  const char order = descr[0];
  const std::string kind = descr.substr(1);
  RWKV_CHECK(order != '>', path, ": the array is big-endian ('", descr, "'); convert it with arr.astype('<", kind,
             "') and save it again");
  RWKV_CHECK(order == '<' || order == '|' || order == '=', path, ": unsupported byte order in dtype '", descr, "'");
  static const std::map<std::string, TokenDtype> known = {
      {"u1", TokenDtype::uint8}, {"i1", TokenDtype::int8},   {"i2", TokenDtype::int16}, {"u2", TokenDtype::uint16},
      {"i4", TokenDtype::int32}, {"u4", TokenDtype::uint32}, {"i8", TokenDtype::int64}};
  const auto found = known.find(kind);
  if (found != known.end()) return found->second;
  RWKV_CHECK(kind[0] != 'f' && kind[0] != 'c', path, ": dtype '", descr,
             "' is floating point; token ids must be integers (uint16, int32 or int64)");
  RWKV_FAIL(path, ": unsupported dtype '", descr,
            "'; token ids must be uint8, int8, int16, uint16, int32, uint32 or int64");
}

}  // namespace

NpyHeader parse_npy_header(const std::byte* bytes, std::uint64_t size, const std::string& path) {
  static constexpr char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
  RWKV_CHECK(size >= 10 && std::memcmp(bytes, kMagic, sizeof kMagic) == 0, path,
             ": not a .npy file (bad magic; expected \"\\x93NUMPY\")");
  const auto major = static_cast<unsigned>(bytes[6]);
  RWKV_CHECK(major >= 1 && major <= 3, path, ": unsupported .npy format version ", major, ".",
             static_cast<unsigned>(bytes[7]));
  const std::uint64_t length_bytes = major == 1 ? 2 : 4;
  RWKV_CHECK(size >= 8 + length_bytes, path, ": truncated .npy header");
  const std::uint64_t header_length =
      major == 1 ? load_le<std::uint16_t>(bytes + 8) : load_le<std::uint32_t>(bytes + 8);
  const std::uint64_t header_start = 8 + length_bytes;
  RWKV_CHECK(header_length <= size - header_start, path, ": truncated .npy header (", header_length,
             " header bytes announced, file has ", size, " bytes)");
  const std::string_view text(reinterpret_cast<const char*>(bytes + header_start), header_length);
  const auto dict = HeaderParser(text, path).parse_dict();

  const auto get = [&](const char* key) -> const HeaderValue& {
    const auto found = dict.find(key);
    RWKV_CHECK(found != dict.end(), path, ": .npy header has no '", key, "': ", text);
    return found->second;
  };
  const auto* descr = std::get_if<std::string>(&get("descr"));
  const auto* fortran = std::get_if<bool>(&get("fortran_order"));
  const auto* shape = std::get_if<std::vector<std::uint64_t>>(&get("shape"));
  RWKV_CHECK(descr && fortran && shape, path, ": malformed .npy header: ", text);
  NpyHeader header;
  header.dtype = dtype_from_descr(*descr, path);
  RWKV_CHECK(!*fortran, path, ": the array is in Fortran order; token data must be a C-order 1-D array");
  if (shape->size() != 1) {
    std::string dims;
    for (std::uint64_t d : *shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    RWKV_FAIL(path, ": the array is ", shape->size(), "-D (shape (", dims,
              ")); token data must be a 1-D array (arr.reshape(-1))");
  }
  header.length = (*shape)[0];
  header.data_offset = header_start + header_length;
  const std::uint64_t item = itemsize(header.dtype);
  const std::uint64_t available = size - header.data_offset;
  RWKV_CHECK(header.length <= available / item && header.length * item == available, path, ": ",
             (header.length > available / item ? "truncated data" : "extra data after the array"), ": the header says ",
             header.length, " elements of ", dtype_name(header.dtype), " (", "that many times ", item, " bytes), but ",
             available, " bytes follow the header");
  RWKV_CHECK(header.data_offset % item == 0, path, ": data offset ", header.data_offset, " is not aligned to ", item,
             " bytes");
  return header;
}

TokenShard open_npy_shard(const std::string& path) {
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  const NpyHeader header = parse_npy_header(file->data(), file->size(), path);
  TokenShard shard;
  shard.path = path;
  shard.dtype = header.dtype;
  shard.tokens = header.length > 0 ? file->data() + header.data_offset : nullptr;
  shard.size = header.length;
  shard.owner = std::move(file);
  return shard;
}

}  // namespace rwkv::data
