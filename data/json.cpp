#include "data/json.h"
#include "data/utf8_codepoints.h"

#include <algorithm>
#include <charconv>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <system_error>

#include "core/error.h"

namespace rwkv::data::json {

namespace {

// Objects with more members than this get a hash index (which also finds duplicate keys).
constexpr std::size_t kIndexThreshold = 16;

// Length of the well-formed UTF-8 sequence starting at text[pos] (a non-ASCII lead byte), or 0 when it
// is malformed: bad continuation, overlong form, surrogate, or beyond U+10FFFF.
std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) {
  const auto byte = [&](std::size_t i) -> unsigned {
    return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i]) : 0u;
  };
  const auto continuation = [](unsigned b) { return (b & 0xC0) == 0x80; };
  const unsigned lead = byte(0);
  if (lead >= 0xC2 && lead <= 0xDF) return continuation(byte(1)) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    const unsigned second = byte(1);
    const bool ok_second = lead == 0xE0   ? (second >= 0xA0 && second <= 0xBF)
                           : lead == 0xED ? (second >= 0x80 && second <= 0x9F)
                                          : continuation(second);
    return ok_second && continuation(byte(2)) ? 3 : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    const unsigned second = byte(1);
    const bool ok_second = lead == 0xF0   ? (second >= 0x90 && second <= 0xBF)
                           : lead == 0xF4 ? (second >= 0x80 && second <= 0x8F)
                                          : continuation(second);
    return ok_second && continuation(byte(2)) && continuation(byte(3)) ? 4 : 0;
  }
  return 0;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

class Parser {
public:
  explicit Parser(std::string_view text) : text_(text) {}

  Value parse_document() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    skip_whitespace();
    if (pos_ >= text_.size()) fail(pos_, "empty input, expected a JSON value");
    Value value = parse_value(0);
    skip_whitespace();
    if (pos_ < text_.size()) fail(pos_, "unexpected content after the JSON value");
    return value;
  }

private:
  [[noreturn]] void fail(std::size_t pos, std::string_view message) const {
    pos = std::min(pos, text_.size());
    std::size_t line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < pos; ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    RWKV_FAIL("JSON parse error at line ", line, ", column ", pos - line_start + 1, ": ", message);
  }

  std::string describe_here() const {
    if (pos_ >= text_.size()) return "end of input";
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x21 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    static const char* hex = "0123456789ABCDEF";
    return std::string("byte 0x") + hex[c >> 4] + hex[c & 15];
  }

  void skip_whitespace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }

  bool consume_literal(std::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal) return false;
    pos_ += literal.size();
    return true;
  }

  Value parse_value(int depth) {
    if (pos_ >= text_.size()) fail(pos_, "unexpected end of input, expected a JSON value");
    Value value;
    switch (text_[pos_]) {
      case '{':
        value.data_ = parse_object(depth + 1);
        break;
      case '[':
        value.data_ = parse_array(depth + 1);
        break;
      case '"':
        value.data_ = parse_string();
        break;
      case 't':
        if (!consume_literal("true")) fail(pos_, "invalid literal, expected 'true'");
        value.data_ = true;
        break;
      case 'f':
        if (!consume_literal("false")) fail(pos_, "invalid literal, expected 'false'");
        value.data_ = false;
        break;
      case 'n':
        if (!consume_literal("null")) fail(pos_, "invalid literal, expected 'null'");
        break;
      default:
        if (text_[pos_] == '-' || is_digit(text_[pos_])) {
          value.data_ = parse_number();
        } else {
          fail(pos_, "unexpected " + describe_here() + ", expected a JSON value");
        }
    }
    return value;
  }

  void check_depth(int depth) const {
    if (depth > kMaxDepth) fail(pos_, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
  }

  Value::Object parse_object(int depth) {
    check_depth(depth);
    const std::size_t open = pos_;
    ++pos_;  // '{'
    Value::Object object;
    skip_whitespace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return object;
    }
    while (true) {
      skip_whitespace();
      if (pos_ >= text_.size() || text_[pos_] != '"') {
        fail(pos_, "unexpected " + describe_here() + ", expected a string key in the object");
      }
      const std::size_t key_pos = pos_;
      std::string key = parse_string();
      if (object.members.size() < kIndexThreshold) {
        for (const auto& member : object.members) {
          if (member.first == key) fail(key_pos, "duplicate key \"" + key + "\" in object");
        }
      }
      skip_whitespace();
      if (pos_ >= text_.size() || text_[pos_] != ':') {
        fail(pos_, "unexpected " + describe_here() + ", expected ':' after the object key");
      }
      ++pos_;
      skip_whitespace();
      Value member_value = parse_value(depth);
      object.members.emplace_back(std::move(key), std::move(member_value));
      skip_whitespace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        break;
      }
      fail(pos_, "unexpected " + describe_here() + ", expected ',' or '}' in the object");
    }
    if (object.members.size() > kIndexThreshold) build_index(object, open);
    return object;
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
          fail(open, "duplicate key \"" + key + "\" in the object that starts here");
        }
      }
      object.index[slot] = position + 1;
    }
  }

  Array parse_array(int depth) {
    check_depth(depth);
    ++pos_;  // '['
    Array array;
    skip_whitespace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return array;
    }
    while (true) {
      skip_whitespace();
      array.push_back(parse_value(depth));
      skip_whitespace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        break;
      }
      fail(pos_, "unexpected " + describe_here() + ", expected ',' or ']' in the array");
    }
    return array;
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > text_.size()) fail(pos_, "truncated \\u escape, expected 4 hex digits");
    unsigned value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      unsigned digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        fail(pos_ + i, "invalid hex digit in \\u escape");
      }
      value = value * 16 + digit;
    }
    pos_ += 4;
    return value;
  }

  std::string parse_string() {
    const std::size_t open = pos_;
    ++pos_;  // '"'
    std::string out;
    while (true) {
      // Copy the run of characters that need no attention in one go.
      const std::size_t run_start = pos_;
      while (pos_ < text_.size()) {
        const unsigned char c = static_cast<unsigned char>(text_[pos_]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++pos_;
      }
      out.append(text_.data() + run_start, pos_ - run_start);
      if (pos_ >= text_.size()) fail(open, "unterminated string");
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail(pos_, "unescaped control character in string");
      if (c >= 0x80) {
        const std::size_t length = utf8_sequence_length(text_, pos_);
        if (length == 0) fail(pos_, "invalid UTF-8 in string");
        out.append(text_.data() + pos_, length);
        pos_ += length;
        continue;
      }
      // Backslash escape.
      ++pos_;
      if (pos_ >= text_.size()) fail(open, "unterminated string");
      const char escape = text_[pos_++];
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const std::size_t escape_pos = pos_ - 2;
          std::uint32_t code_point = parse_hex4();
          if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
            fail(escape_pos, "lone low surrogate in \\u escape");
          }
          if (code_point >= 0xD800 && code_point <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") {
              fail(escape_pos, "high surrogate in \\u escape is not followed by a low surrogate");
            }
            pos_ += 2;
            const unsigned low = parse_hex4();
            if (low < 0xDC00 || low > 0xDFFF) {
              fail(escape_pos, "high surrogate in \\u escape is not followed by a low surrogate");
            }
            code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, static_cast<char32_t>(code_point));
          break;
        }
        default:
          fail(pos_ - 1, "invalid escape sequence in string");
      }
    }
  }

  Value::Number parse_number() {
    const std::size_t start = pos_;
    bool negative = false;
    if (text_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    // Grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
    const std::size_t int_start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
      if (pos_ < text_.size() && is_digit(text_[pos_])) fail(int_start, "leading zeros are not allowed");
    } else if (pos_ < text_.size() && is_digit(text_[pos_])) {
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    } else {
      fail(pos_, "expected a digit in the number");
    }
    const std::size_t int_end = pos_;
    bool integral = true;
    std::size_t frac_start = pos_;
    std::size_t frac_end = pos_;
    long long exponent = 0;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integral = false;
      ++pos_;
      frac_start = pos_;
      if (pos_ >= text_.size() || !is_digit(text_[pos_])) fail(pos_, "expected a digit after '.'");
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
      frac_end = pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      bool exponent_negative = false;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) {
        exponent_negative = text_[pos_] == '-';
        ++pos_;
      }
      if (pos_ >= text_.size() || !is_digit(text_[pos_])) fail(pos_, "expected a digit in the exponent");
      while (pos_ < text_.size() && is_digit(text_[pos_])) {
        if (exponent < 1'000'000'000) exponent = exponent * 10 + (text_[pos_] - '0');
        ++pos_;
      }
      if (exponent_negative) exponent = -exponent;
    }

    Value::Number number;
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      std::int64_t integer = 0;
      const auto [end, error] = std::from_chars(first, last, integer);
      if (error == std::errc() && end == last) {
        number.integer = integer;
        number.exact_integer = true;
        number.value = static_cast<double>(integer);
        return number;
      }
    }
    double value = 0;
    const auto [end, error] = std::from_chars(first, last, value);
    if (error == std::errc::result_out_of_range) {
      // Decimal position of the leading significant digit decides overflow (error) vs underflow (zero).
      long long magnitude = exponent;
      const std::string_view int_digits = text_.substr(int_start, int_end - int_start);
      if (int_digits != "0") {
        magnitude += static_cast<long long>(int_digits.size());
      } else {
        const std::string_view frac = text_.substr(frac_start, frac_end - frac_start);
        const std::size_t first_nonzero = frac.find_first_not_of('0');
        magnitude -= static_cast<long long>(first_nonzero == std::string_view::npos ? 0 : first_nonzero);
      }
      if (magnitude > 0) fail(start, "number is too large for a double");
      value = negative ? -0.0 : 0.0;
    } else if (error != std::errc() || end != last) {
      fail(start, "invalid number");
    }
    number.value = value;
    return number;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
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

Value parse(std::string_view text) { return Parser(text).parse_document(); }

std::string quote(std::string_view text) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (std::size_t pos = 0; pos < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[pos]);
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence_length(text, pos);
      if (length == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD
        ++pos;
      } else {
        out.append(text.data() + pos, length);
        pos += length;
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
