#include "data/tokenizer_pretokenize.h"

#include <array>
#include <cstdint>

#include "data/unicode.h"

namespace rwkv::data {

namespace {

// Character classes of the ASCII range, so the common case needs no table walk.
constexpr std::array<std::uint8_t, 128> make_ascii_classes() {
  std::array<std::uint8_t, 128> classes{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      classes[c] = unicode::kLetter;
    } else if (c >= '0' && c <= '9') {
      classes[c] = unicode::kNumber;
    } else if (c == ' ' || (c >= '\t' && c <= '\r')) {
      classes[c] = unicode::kWhitespace;
    } else {
      classes[c] = unicode::kOther;
    }
  }
  return classes;
}
constexpr std::array<std::uint8_t, 128> kAsciiClasses = make_ascii_classes();

// Class of the code point at text[pos]; sets length to its byte count.
inline std::uint8_t class_at(std::string_view text, std::size_t pos, std::size_t& length) {
  const auto byte = static_cast<unsigned char>(text[pos]);
  if (byte < 0x80) {
    length = 1;
    return kAsciiClasses[byte];
  }
  return unicode::char_class(unicode::decode_utf8(text, pos, length));
}

// End of the run of characters of class klass starting at pos.
inline std::size_t run_end(std::string_view text, std::size_t pos, std::uint8_t klass) {
  std::size_t length;
  while (pos < text.size() && class_at(text, pos, length) == klass) pos += length;
  return pos;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd, lower case only) at text[pos] == '\'', or 0.
inline std::size_t contraction_length(std::string_view text, std::size_t pos) {
  if (pos + 1 >= text.size()) return 0;
  const char first = text[pos + 1];
  if (first == 's' || first == 't' || first == 'm' || first == 'd') return 2;
  if (pos + 2 >= text.size()) return 0;
  const char second = text[pos + 2];
  if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') || (first == 'l' && second == 'l')) {
    return 3;
  }
  return 0;
}

}  // namespace

std::size_t gpt2_pretoken_end(std::string_view text, std::size_t pos) {
  if (text[pos] == '\'') {
    if (const std::size_t length = contraction_length(text, pos)) return pos + length;
  }
  std::size_t length;
  const std::uint8_t klass = class_at(text, pos, length);
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional single space joins the run after it.
  if (text[pos] == ' ' && pos + 1 < text.size()) {
    std::size_t next_length;
    const std::uint8_t next_class = class_at(text, pos + 1, next_length);
    if (next_class != unicode::kWhitespace) return run_end(text, pos + 1 + next_length, next_class);
  }
  if (klass != unicode::kWhitespace) return run_end(text, pos + length, klass);

  // "\s+(?!\S)|\s+": a whitespace run; when something follows it, its last character is left to start
  // the next pre-token (unless the run is a single character).
  std::size_t last_start = pos;
  std::size_t end = pos + length;
  while (end < text.size()) {
    std::size_t next_length;
    if (class_at(text, end, next_length) != unicode::kWhitespace) break;
    last_start = end;
    end += next_length;
  }
  if (end == text.size() || last_start == pos) return end;
  return last_start;
}

}  // namespace rwkv::data
