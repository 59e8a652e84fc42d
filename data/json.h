// The project's JSON façade: a strict JSON (RFC 8259) reader into a small document type, and the string/number
// writers needed to emit JSON. The parsing itself is nlohmann/json's (its SAX interface, in data/json.cpp).
//
// Strict means: UTF-8 text only, no comments, no trailing commas, no NaN/Infinity, no duplicate keys,
// no lone surrogates in \u escapes, nothing after the top-level value (a NUL byte included). Errors are
// rwkv::Error with "line L, column C" (1-based; the column counts bytes). Nesting deeper than kMaxDepth is an
// error rather than a stack overflow, so untrusted input is safe to parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace rwkv::data::json {

inline constexpr int kMaxDepth = 512;

class Value;
using Array = std::vector<Value>;
using Member = std::pair<std::string, Value>;
using Members = std::vector<Member>;

class Value {
public:
  enum class Kind { null, boolean, number, string, array, object };

  Value() = default;  // null

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::null; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_number() const { return kind() == Kind::number; }
  bool is_string() const { return kind() == Kind::string; }
  bool is_array() const { return kind() == Kind::array; }
  bool is_object() const { return kind() == Kind::object; }
  // True for a number written without fraction or exponent that fits int64 exactly.
  bool is_integer() const;

  // Each accessor throws rwkv::Error naming the expected and the actual kind on a mismatch.
  bool as_bool() const;
  double as_number() const;
  // Exact for integer literals; also accepts a number whose value is integral and in range (e.g. 1e3).
  std::int64_t as_int64() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  // Object members in the order they appear in the text.
  const Members& items() const;

  // Object lookup; nullptr when the key is absent (throws when this is not an object).
  const Value* find(std::string_view key) const;
  // Object lookup that throws an error naming the key when it is absent.
  const Value& at(std::string_view key) const;

  static const char* kind_name(Kind kind);

private:
  friend class Parser;  // builds Values from nlohmann's SAX events

  struct Number {
    double value = 0;
    std::int64_t integer = 0;
    bool exact_integer = false;
  };
  struct Object {
    Members members;
    // Hash index of large objects (open addressing; member position + 1, 0 = empty slot), so that
    // find() does not scan them.
    std::vector<std::uint32_t> index;
  };

  std::variant<std::monostate, bool, Number, std::string, Array, Object> data_;
};

// Parses one JSON text (an optional UTF-8 byte order mark is skipped).
Value parse(std::string_view text);

// A JSON string literal for text, quotes included. Control characters, '"' and '\' are escaped; valid
// UTF-8 is kept as is; each byte that is not part of valid UTF-8 becomes U+FFFD.
std::string quote(std::string_view text);

// The shortest decimal form that reads back to the same double; throws for NaN and infinities.
std::string number(double value);

}  // namespace rwkv::data::json
