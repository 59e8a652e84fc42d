#include "data/utf8_codepoints.h"

#include <cstdint>
#include <cstdio>

namespace rwkv::data {

bool next_code_point(std::string_view text, std::size_t& pos, char32_t& code_point) {
  const std::size_t left = text.size() - pos;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[pos + i]); };
  const auto continuation = [&](std::size_t i) { return i < left && (byte(i) & 0xC0) == 0x80; };
  const std::uint8_t lead = byte(0);
  if (lead < 0x80) {
    code_point = lead;
    pos += 1;
    return true;
  }
  // Sequence length, payload bits of the lead byte, and the smallest value that needs this length
  // (anything below is an overlong encoding).
  struct Form {
    std::size_t length;
    std::uint8_t payload_mask;
    char32_t smallest;
  };
  Form form{};
  if ((lead & 0xE0) == 0xC0) {
    form = {2, 0x1F, 0x80};
  } else if ((lead & 0xF0) == 0xE0) {
    form = {3, 0x0F, 0x800};
  } else if ((lead & 0xF8) == 0xF0) {
    form = {4, 0x07, 0x10000};
  } else {
    return false;  // a continuation byte or 0xF8..0xFF as lead
  }
  const std::size_t length = form.length;
  char32_t value = lead & form.payload_mask;
  for (std::size_t i = 1; i < length; ++i) {
    if (!continuation(i)) return false;
    value = (value << 6) | (byte(i) & 0x3F);
  }
  if (value < form.smallest || value > kMaxCodePoint || (value >= 0xD800 && value <= 0xDFFF)) return false;
  code_point = value;
  pos += length;
  return true;
}

void append_utf8(std::string& out, char32_t code_point) {
  const auto put = [&](std::uint32_t value) { out.push_back(static_cast<char>(value)); };
  const auto c = static_cast<std::uint32_t>(code_point);
  if (c < 0x80) {
    put(c);
    return;
  }
  if (c < 0x800) {
    put(0xC0 | (c >> 6));
  } else if (c < 0x10000) {
    put(0xE0 | (c >> 12));
    put(0x80 | ((c >> 6) & 0x3F));
  } else {
    put(0xF0 | (c >> 18));
    put(0x80 | ((c >> 12) & 0x3F));
    put(0x80 | ((c >> 6) & 0x3F));
  }
  put(0x80 | (c & 0x3F));
}

std::string describe_code_point(char32_t code_point) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(code_point));
  std::string text = hex;
  if (code_point >= 0x20 && code_point != 0x7F) {
    text += " '";
    append_utf8(text, code_point);
    text += "'";
  }
  return text;
}

}  // namespace rwkv::data
