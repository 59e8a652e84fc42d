// The Unicode pieces the BPE tokenizer needs: UTF-8 decoding and validation, character classes for the
// GPT-2 pre-tokenizer, and NFC normalisation. Tables come from data/unicode_tables.cpp (generated; see
// tests/reference/tokenizer/gen_unicode_tables.mjs for why normalisation is Unicode 9.0 and the classes
// Unicode 16.0: that is what HuggingFace `tokenizers` uses).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/unicode_tables.h"

#include "data/utf8_codepoints.h"

namespace rwkv::data::unicode {

// Property bits of a code point (see properties()).
inline constexpr std::uint8_t kClassMask = 3;  // one of the classes below
inline constexpr std::uint8_t kOther = 0;
inline constexpr std::uint8_t kLetter = 1;                  // General_Category L*
inline constexpr std::uint8_t kNumber = 2;                  // General_Category N*
inline constexpr std::uint8_t kWhitespace = 3;              // White_Space
inline constexpr std::uint8_t kWord = 4;                    // \w: Alphabetic, M*, Nd, Pc, Join_Control (UTS #18)
inline constexpr std::uint8_t kNfcQuickCheckFails = 8;      // NFC_QC is No or Maybe
inline constexpr std::uint8_t kNonZeroCombiningClass = 16;  // Canonical_Combining_Class != 0

inline std::uint8_t properties(char32_t code_point) {
  if (code_point >= 0x110000) return 0;
  const unsigned block = tables::kPropertyBlockIndex[code_point >> tables::kBlockShift];
  return tables::kPropertyBlocks[(block << tables::kBlockShift) + (code_point & ((1u << tables::kBlockShift) - 1))];
}

inline std::uint8_t char_class(char32_t code_point) { return properties(code_point) & kClassMask; }

inline bool is_word_character(char32_t code_point) { return (properties(code_point) & kWord) != 0; }

std::uint8_t combining_class(char32_t code_point);

// ---- UTF-8 -----------------------------------------------------------------------------------------

// Decodes the code point at text[pos], which must start a well-formed sequence; sets length to its bytes.
inline char32_t decode_utf8(std::string_view text, std::size_t pos, std::size_t& length) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const unsigned lead = byte(0);
  if (lead < 0x80) {
    length = 1;
    return lead;
  }
  if (lead < 0xE0) {
    length = 2;
    return ((lead & 0x1F) << 6) | (byte(1) & 0x3F);
  }
  if (lead < 0xF0) {
    length = 3;
    return ((lead & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
  }
  length = 4;
  return ((lead & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
}

using rwkv::data::append_utf8;  // one UTF-8 encoder for data/: utf8_codepoints.h

// Byte offset of the first byte that is not part of well-formed UTF-8, or npos when all of it is.
std::size_t find_invalid_utf8(std::string_view text);

// Replaces each maximal ill-formed subsequence with U+FFFD (as Rust's String::from_utf8_lossy does).
std::string to_valid_utf8(std::string_view text);

// ---- NFC ----------------------------------------------------------------------------------------

// True when text (valid UTF-8) is certainly in NFC by the quick check; false means "normalise to find out".
bool nfc_quick_check(std::string_view text);

// NFC of valid UTF-8 text.
std::string to_nfc(std::string_view text);

}  // namespace rwkv::data::unicode
