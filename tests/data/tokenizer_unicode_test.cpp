// Unicode support of the tokenizer: UTF-8 validation and repair, character classes, NFC. Parity of the
// NFC with HuggingFace `tokenizers` is also covered by the "normalized" field of parity_sample.jsonl.
#include <gtest/gtest.h>

#include <string>

#include "data/unicode.h"

namespace rwkv::data::unicode {
namespace {

std::string utf8(char32_t code_point) {
  std::string out;
  append_utf8(out, code_point);
  return out;
}

TEST(DataTokenizerUnicode, Utf8RoundTrip) {
  for (const char32_t code_point : {0x0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    const std::string text = utf8(code_point);
    std::size_t length = 0;
    EXPECT_EQ(decode_utf8(text, 0, length), code_point);
    EXPECT_EQ(length, text.size());
    EXPECT_EQ(find_invalid_utf8(text), std::string::npos);
  }
}

TEST(DataTokenizerUnicode, FindsInvalidUtf8) {
  EXPECT_EQ(find_invalid_utf8("plain ascii text, long enough for the 8-byte fast path"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("abc\x80"), 3u);           // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("abcdefghij\xC3"), 10u);   // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0u);          // overlong
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);     // UTF-8 encoded surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok \xE2\x82\xAC ok\xFF"), 9u);
}

TEST(DataTokenizerUnicode, ReplacesMaximalIllFormedSubsequences) {
  // As Rust's String::from_utf8_lossy (and the Unicode "best practice"): one U+FFFD per maximal subpart.
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(to_valid_utf8("a\xE2\x82"
                          "b"),
            "a" + fffd + "b");                                   // truncated 3-byte sequence: one
  EXPECT_EQ(to_valid_utf8("\xF0\x80\x80"), fffd + fffd + fffd);  // F0 80 is never valid: three
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate: three
  EXPECT_EQ(to_valid_utf8("\xFF\xFE"), fffd + fffd);
  EXPECT_EQ(to_valid_utf8("\xE2\x82\xAC"), "\xE2\x82\xAC");
}

TEST(DataTokenizerUnicode, CharacterClasses) {
  EXPECT_EQ(char_class(U'a'), kLetter);
  EXPECT_EQ(char_class(U'\u00E9'), kLetter);
  EXPECT_EQ(char_class(U'\u4E2D'), kLetter);      // CJK
  EXPECT_EQ(char_class(U'\U00010D50'), kLetter);  // Garay, new in Unicode 16.0
  EXPECT_EQ(char_class(U'\U00010940'), kOther);   // Sidetic, new in 17.0: unassigned for tokenizers
  EXPECT_EQ(char_class(U'7'), kNumber);
  EXPECT_EQ(char_class(U'\u00BD'), kNumber);  // No
  EXPECT_EQ(char_class(U'\u2168'), kNumber);  // Nl
  for (const char32_t space :
       {U' ', U'\t', U'\n', U'\r', U'\u000B', U'\u000C', U'\u0085', U'\u00A0', U'\u2003', U'\u2028', U'\u3000'}) {
    EXPECT_EQ(char_class(space), kWhitespace) << static_cast<unsigned>(space);
  }
  for (const char32_t other : {U'\u200B', U'\uFEFF', U'\u180E', U'\u001C', U'\'', U'\u0301', U'\U0001F600'}) {
    EXPECT_EQ(char_class(other), kOther) << static_cast<unsigned>(other);
  }
  EXPECT_TRUE(is_word_character(U'\u0301'));  // marks count as \w
  EXPECT_TRUE(is_word_character(U'_'));
  EXPECT_TRUE(is_word_character(U'\u200D'));
  EXPECT_FALSE(is_word_character(U'\u00B2'));
  EXPECT_FALSE(is_word_character(U'-'));
}

TEST(DataTokenizerUnicode, Nfc) {
  EXPECT_EQ(to_nfc("cafe\xCC\x81"), "caf\xC3\xA9");                           // compose
  EXPECT_EQ(to_nfc("a\xCC\x81\xCC\xA3"), "\xE1\xBA\xA1\xCC\x81");             // reorder: dot below first, then compose
  EXPECT_EQ(to_nfc("\xE2\x84\xAB"), "\xC3\x85");                              // singleton U+212B -> U+00C5
  EXPECT_EQ(to_nfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");              // exclusion U+0958 stays decomposed
  EXPECT_EQ(to_nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // Hangul L V T -> U+AC01
  EXPECT_EQ(to_nfc("\xCC\x81"
                   "abc"),
            "\xCC\x81"
            "abc");  // leading mark stays
  // tokenizers normalises with Unicode 9.0 data: U+11A34 (10.0) is an unknown starter and blocks.
  EXPECT_EQ(to_nfc("a\xF0\x91\xA8\xB4\xCC\xA3"), "a\xF0\x91\xA8\xB4\xCC\xA3");
  EXPECT_EQ(to_nfc("a\xF0\x9E\xA5\x84\xCC\xA3"), "\xE1\xBA\xA1\xF0\x9E\xA5\x84");  // U+1E944 (9.0) reorders
  // Only the stretch around a problem is rewritten; the rest is copied.
  const std::string long_text = std::string(1000, 'x') + "e\xCC\x81" + std::string(1000, 'y') + "A\xCC\x8A";
  EXPECT_EQ(to_nfc(long_text), std::string(1000, 'x') + "\xC3\xA9" + std::string(1000, 'y') + "\xC3\x85");
}

TEST(DataTokenizerUnicode, NfcQuickCheck) {
  EXPECT_TRUE(nfc_quick_check("plain text"));
  EXPECT_TRUE(nfc_quick_check("caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87"));
  EXPECT_FALSE(
      nfc_quick_check("a\xCC\xA3"
                      "b"));                           // U+0323 may combine with the a: "maybe"
  EXPECT_FALSE(nfc_quick_check("e\xCC\x81"));          // U+0301 may combine: "maybe"
  EXPECT_FALSE(nfc_quick_check("\xE2\x84\xAB"));       // U+212B never appears in NFC
  EXPECT_TRUE(nfc_quick_check("x\xCC\x96\xCC\x95"));   // U+0316 (220) then U+0315 (232): in order
  EXPECT_FALSE(nfc_quick_check("x\xCC\x95\xCC\x96"));  // the other way round is not
  EXPECT_TRUE(nfc_quick_check("x\xCC\x95 \xCC\x96"));  // unless a starter comes in between
  EXPECT_EQ(to_nfc("x\xCC\x95\xCC\x96"), "x\xCC\x96\xCC\x95");
}

}  // namespace
}  // namespace rwkv::data::unicode
