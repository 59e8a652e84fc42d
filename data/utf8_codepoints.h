// Strict UTF-8 <-> Unicode code points, for character-level text data.
// Strict = what Python's "utf-8" codec accepts: no overlong forms, no surrogates (U+D800..U+DFFF),
// nothing above U+10FFFF, no truncated sequences.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rwkv::data {

inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

// Decodes the code point starting at text[pos] and advances pos past it. Returns false (pos unchanged)
// when the bytes there are not valid UTF-8.
bool next_code_point(std::string_view text, std::size_t& pos, char32_t& code_point);

// Appends the UTF-8 encoding of a valid code point.
void append_utf8(std::string& out, char32_t code_point);

// "U+00E9 'é'" for messages (the character itself is left out for control characters).
std::string describe_code_point(char32_t code_point);

}  // namespace rwkv::data
