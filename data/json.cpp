#include "data/json.h"
#include "data/utf8_codepoints.h"

#include <algorithm>
#include <charconv>
#include <bit>
#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace rwkv::data::json {

namespace {

// Objects with more members than this get a hash index (which also finds duplicate keys).
constexpr std::size_t kIndexThreshold = 16;

[[noreturn]] void fail(std::string_view text, std::size_t pos, std::string_view message) {
  pos = std::min(pos, text.size());
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < pos; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  RWKV_FAIL("JSON parse error at line ", line, ", column ", pos - line_start + 1, ": ", message);
}

// The text as nlohmann's parser reads it, one byte at a time through a position that the SAX handler can see
// (where the lexer is when a nesting level or a key arrives).
class TrackedInput {
public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  explicit TrackedInput(const char** position) : position_(position) {}
  reference operator*() const { return **position_; }
  TrackedInput& operator++() {
    ++*position_;
    return *this;
  }
  TrackedInput operator++(int) {
    TrackedInput before = *this;
    ++*position_;
    return before;
  }
  bool operator==(const TrackedInput& other) const { return *position_ == *other.position_; }

private:
  const char** position_;
};

// Bytes of text that end at end and that nlohmann's get_token_string() shows as token: it writes each control
// byte as "<U+00XX>" (8 characters) and every other byte as itself.
std::size_t raw_token_length(std::string_view text, std::size_t end, std::size_t token_chars) {
  std::size_t start = end;
  while (token_chars > 0 && start > 0) {
    const unsigned char c = static_cast<unsigned char>(text[--start]);
    const std::size_t shown = c <= 0x1F ? 8 : 1;
    token_chars -= std::min(shown, token_chars);
  }
  return end - start;
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

}  // namespace

// Builds a Value from nlohmann's SAX events and turns its errors into the project's "line L, column C" errors.
// nlohmann does the lexing and the grammar (RFC 8259, UTF-8 validation, surrogate pairs, numbers, trailing
// content); this adds the nesting limit and duplicate keys, which nlohmann does not check.
class Parser {
public:
  Parser(std::string_view text, const char* const* position) : text_(text), position_(position) {}

  Value take() { return std::move(root_); }

  bool null() {
    next();
    return true;
  }
  bool boolean(bool value) {
    next().data_ = value;
    return true;
  }
  bool number_integer(std::int64_t value) {
    next().data_ = Value::Number{static_cast<double>(value), value, true};
    return true;
  }
  bool number_unsigned(std::uint64_t value) {
    if (value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return number_integer(static_cast<std::int64_t>(value));
    }
    next().data_ = Value::Number{static_cast<double>(value), 0, false};
    return true;
  }
  bool number_float(double value, const std::string& /*literal*/) {
    next().data_ = Value::Number{value, 0, false};
    return true;
  }
  bool string(std::string& value) {
    next().data_ = std::move(value);
    return true;
  }
  bool binary(nlohmann::json::binary_t& /*value*/) { RWKV_FAIL("JSON: unexpected binary value"); }  // not in JSON text

  bool start_object(std::size_t /*size*/) {
    open(Value::Object{});
    return true;
  }
  bool key(std::string& key) {
    auto& members = std::get<Value::Object>(open_.back().value->data_).members;
    if (members.size() < kIndexThreshold) {
      for (const auto& member : members) {
        if (member.first == key) fail(text_, key_start(), "duplicate key \"" + key + "\" in object");
      }
    }
    members.emplace_back().first = std::move(key);
    return true;
  }
  bool end_object() {
    auto& object = std::get<Value::Object>(open_.back().value->data_);
    if (object.members.size() > kIndexThreshold) build_index(object, open_.back().offset);
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t /*size*/) {
    open(Array{});
    return true;
  }
  bool end_array() {
    open_.pop_back();
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::json::exception& error) {
    report(position, last_token, error);
  }

private:
  struct Open {
    Value* value;
    std::size_t offset;  // of its '{' or '['
  };

  std::size_t offset() const { return static_cast<std::size_t>(*position_ - text_.data()); }

  // The value that the next event fills: the document, the next array element or the member the last key began.
  Value& next() {
    if (open_.empty()) return root_;
    Value& container = *open_.back().value;
    if (auto* array = std::get_if<Array>(&container.data_)) return array->emplace_back();
    return std::get<Value::Object>(container.data_).members.back().second;
  }

  template <typename Container>
  void open(Container container) {
    // The lexer has just read the '{' or '['.
    if (open_.size() >= static_cast<std::size_t>(kMaxDepth)) {
      fail(text_, offset() - 1, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    Value& value = next();
    value.data_ = std::move(container);
    open_.push_back({&value, offset() - 1});
  }

  // The opening quote of the key the lexer has just read: the last '"' before the closing one that no odd run of
  // backslashes escapes.
  std::size_t key_start() const {
    std::size_t quote = offset() - 1;
    while (quote > 0) {
      --quote;
      if (text_[quote] != '"') continue;
      std::size_t backslashes = 0;
      while (backslashes < quote && text_[quote - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) break;
    }
    return quote;
  }

  // nlohmann stops at the byte that makes a UTF-8 sequence ill-formed; the error points at the sequence's first
  // byte: the first one in the string (from its opening quote at start up to last) that is not valid UTF-8.
  std::size_t first_invalid_utf8(std::size_t start, std::size_t last) const {
    for (std::size_t pos = start + 1; pos < last;) {
      const unsigned char c = static_cast<unsigned char>(text_[pos]);
      if (c < 0x80) {
        pos += c == '\\' ? 2 : 1;  // an escape's second byte is never the start of a UTF-8 sequence
        continue;
      }
      std::size_t next = pos;
      char32_t code_point;
      if (!next_code_point(text_, next, code_point)) return pos;
      pos = next;
    }
    return last;
  }

  void build_index(Value::Object& object, std::size_t open) const {
    const auto& members = object.members;
    object.index.assign(std::bit_ceil(members.size() * 2), 0);
    const std::size_t mask = object.index.size() - 1;
    for (std::uint32_t position = 0; position < members.size(); ++position) {
      const std::string& key = members[position].first;
      std::size_t slot = std::hash<std::string_view>{}(key) & mask;
      for (; object.index[slot] != 0; slot = (slot + 1) & mask) {
        if (members[object.index[slot] - 1].first == key) {
          fail(text_, open, "duplicate key \"" + key + "\" in the object that starts here");
        }
      }
      object.index[slot] = position + 1;
    }
  }

  // nlohmann reports where its lexer stopped (position: bytes read, the end of input counting as one) and the
  // token it was reading; this points at the start of the offending token, or at the offending byte inside a
  // string or number, and keeps nlohmann's description without its own position and echo of the input.
  [[noreturn]] void report(std::size_t position, const std::string& last_token,
                           const nlohmann::json::exception& error) const {
    const std::size_t size = text_.size();
    const std::size_t end = std::min(position, size);       // bytes the token has read
    const std::size_t last = position == 0 ? 0 : std::min(position - 1, size);  // the last byte read (size: end)
    const auto token_start = [&] { return end - raw_token_length(text_, end, last_token.size()); };

    if (error.id == 406) fail(text_, token_start(), "number is too large for a double");  // out_of_range.406
    // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while parsing value - <what>"
    std::string_view what = error.what();
    if (const std::size_t colon = what.find(": "); colon != std::string_view::npos) what.remove_prefix(colon + 2);
    const std::size_t dash = what.find(" - ");
    if (starts_with(what, "syntax error") && dash != std::string_view::npos) what.remove_prefix(dash + 3);
    what = what.substr(0, what.find("; last read: "));

    if (starts_with(what, "invalid BOM")) fail(text_, 0, what);
    if (what == "invalid string: missing closing quote") fail(text_, token_start(), "unterminated string");
    if (what == "invalid string: forbidden character after backslash") {
      if (last >= size) fail(text_, token_start(), "unterminated string");  // a final backslash
      fail(text_, last, "invalid escape sequence in string");
    }
    if (what == "invalid string: ill-formed UTF-8 byte") {
      fail(text_, first_invalid_utf8(token_start(), last), "invalid UTF-8 in string");
    }
    if (starts_with(what, "invalid string") || starts_with(what, "invalid number")) fail(text_, last, what);
    if (what == "invalid literal") {
      // At the first byte that does not continue "true", "false" or "null": point at the literal's start.
      for (const std::string_view literal : {"true", "false", "null"}) {
        for (std::size_t length = 1; length < literal.size() && length <= last; ++length) {
          if (text_.substr(last - length, length) == literal.substr(0, length)) {
            fail(text_, last - length, "invalid literal, expected '" + std::string(literal) + "'");
          }
        }
      }
      // A byte that starts no JSON value.
      if (last >= size) fail(text_, last, what);
      const unsigned char c = static_cast<unsigned char>(text_[last]);
      if (c >= 0x21 && c < 0x7F) fail(text_, last, std::string("unexpected '") + static_cast<char>(c) + "'");
      static const char* hex = "0123456789ABCDEF";
      fail(text_, last, std::string("unexpected byte 0x") + hex[c >> 4] + hex[c & 15]);
    }
    // A grammar error: the offending token ends at end.
    if (position > size) fail(text_, size, what);  // the end of input
    const char final_byte = end == 0 ? '\0' : text_[end - 1];
    if (final_byte == '\0') {
      // nlohmann's lexer takes a NUL byte for the end of input.
      std::string message(what);
      if (const std::size_t eoi = message.find("end of input"); eoi != std::string::npos) {
        message.replace(eoi, 12, "byte 0x00");
      }
      fail(text_, last, message);
    }
    if (final_byte == '"' || (final_byte >= '0' && final_byte <= '9')) fail(text_, token_start(), what);
    if (final_byte == 'e' || final_byte == 'l') {
      fail(text_, end >= 5 && text_.substr(end - 5, 5) == "false" ? end - 5 : end - 4, what);  // true, false, null
    }
    fail(text_, end - 1, what);  // a one-byte token
  }

  std::string_view text_;
  const char* const* position_;  // one past the last byte the lexer has read
  Value root_;
  std::vector<Open> open_;
};

// ---- Value ----------------------------------------------------------------------------------------

const char* Value::kind_name(Kind kind) {
  switch (kind) {
    case Kind::null: return "null";
    case Kind::boolean: return "a boolean";
    case Kind::number: return "a number";
    case Kind::string: return "a string";
    case Kind::array: return "an array";
    case Kind::object: return "an object";
  }
  return "?";
}

namespace {
[[noreturn]] void wrong_kind(Value::Kind expected, Value::Kind actual) {
  RWKV_FAIL("JSON: expected ", Value::kind_name(expected), ", found ", Value::kind_name(actual));
}
}  // namespace

bool Value::is_integer() const {
  const auto* number = std::get_if<Number>(&data_);
  return number != nullptr && number->exact_integer;
}

bool Value::as_bool() const {
  if (!is_bool()) wrong_kind(Kind::boolean, kind());
  return std::get<bool>(data_);
}

double Value::as_number() const {
  if (!is_number()) wrong_kind(Kind::number, kind());
  return std::get<Number>(data_).value;
}

std::int64_t Value::as_int64() const {
  if (!is_number()) wrong_kind(Kind::number, kind());
  const Number& number = std::get<Number>(data_);
  if (number.exact_integer) return number.integer;
  // 2^63 is exactly representable; every double in [-2^63, 2^63) converts without overflow.
  constexpr double kLimit = 9223372036854775808.0;
  RWKV_CHECK(std::trunc(number.value) == number.value && number.value >= -kLimit && number.value < kLimit,
             "JSON: expected an integer, found ", number.value);
  return static_cast<std::int64_t>(number.value);
}

const std::string& Value::as_string() const {
  if (!is_string()) wrong_kind(Kind::string, kind());
  return std::get<std::string>(data_);
}

const Array& Value::as_array() const {
  if (!is_array()) wrong_kind(Kind::array, kind());
  return std::get<Array>(data_);
}

const Members& Value::items() const {
  if (!is_object()) wrong_kind(Kind::object, kind());
  return std::get<Object>(data_).members;
}

const Value* Value::find(std::string_view key) const {
  if (!is_object()) wrong_kind(Kind::object, kind());
  const Object& object = std::get<Object>(data_);
  if (object.index.empty()) {
    for (const auto& member : object.members) {
      if (member.first == key) return &member.second;
    }
    return nullptr;
  }
  const std::size_t mask = object.index.size() - 1;
  for (std::size_t slot = std::hash<std::string_view>{}(key) & mask; object.index[slot] != 0; slot = (slot + 1) & mask) {
    const Member& member = object.members[object.index[slot] - 1];
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  const Value* value = find(key);
  RWKV_CHECK(value != nullptr, "JSON: object has no key \"", key, "\"");
  return *value;
}

// ---- free functions -------------------------------------------------------------------------------

Value parse(std::string_view text) {
  const char* position = text.data();
  const char* const end = text.data() + text.size();
  Parser parser(text, &position);
  const char* end_marker = end;
  // Errors throw in Parser::parse_error.
  const bool parsed = nlohmann::json::sax_parse(TrackedInput(&position), TrackedInput(&end_marker), &parser,
                                                nlohmann::json::input_format_t::json, /*strict=*/true,
                                                /*ignore_comments=*/false);
  RWKV_CHECK(parsed, "JSON parse error: the parser stopped without a reason");  // not reached
  // nlohmann's lexer also ends the input at a NUL byte, which RFC 8259 does not: a parse that stopped there (short
  // of the end, or at a final NUL) has content after the value.
  if (position != end || (!text.empty() && text.back() == '\0')) {
    fail(text, static_cast<std::size_t>(position - text.data()) - 1, "unexpected content after the JSON value");
  }
  return parser.take();
}

std::string quote(std::string_view text) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (std::size_t pos = 0; pos < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[pos]);
    if (c >= 0x80) {
      std::size_t next = pos;
      char32_t code_point;
      if (next_code_point(text, next, code_point)) {
        out.append(text.data() + pos, next - pos);
        pos = next;
      } else {
        out += "\xEF\xBF\xBD";  // U+FFFD
        ++pos;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++pos;
  }
  out += '"';
  return out;
}

std::string number(double value) {
  RWKV_CHECK(std::isfinite(value), "JSON cannot represent the number ", value);
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  RWKV_CHECK(error == std::errc(), "JSON: could not format the number ", value);
  return std::string(buffer, end);
}

}  // namespace rwkv::data::json
