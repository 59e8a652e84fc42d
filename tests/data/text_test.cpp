// Raw text data: bytes mode, RWKV-LM's character-level "utf-8" mode with vocab.json, UTF-8 errors.
#include <filesystem>

#include "data/char_vocab.h"
#include "data/dataset.h"
#include "data/utf8_codepoints.h"
#include "tests/data/data_test_util.h"

namespace rwkv::data {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<std::int32_t> read_all(const TokenSource& source) {
  std::vector<std::int32_t> tokens(source.size());
  source.read(0, tokens.size(), tokens.data());
  return tokens;
}

TEST(DataText, BytesModeIsEveryByte) {
  TempDir dir;
  testing::write_bytes(dir.file("a.txt"), std::string("h\xc3\xa9\xff\0z", 6));
  const TokenSource source = open_dataset({dir.file("a.txt"), "bytes", ""});
  EXPECT_EQ(source.kind(), "bytes");
  EXPECT_EQ(source.vocab_size(), 256u);
  EXPECT_EQ(source.dtype_name(), "uint8");
  EXPECT_EQ(read_all(source), (std::vector<std::int32_t>{'h', 0xc3, 0xa9, 0xff, 0, 'z'}));
}

TEST(DataText, CharacterModeBuildsSortedVocabularyAndSavesIt) {
  TempDir dir;
  // "\r\n" and a lone "\r" are read as "\n", as Python's text mode does in RWKV-LM.
  testing::write_bytes(dir.file("a.txt"), "hello\r\nw\xc3\xb6rld \xf0\x9f\x98\x80\r");
  const TokenSource source = open_dataset({dir.file("a.txt"), "utf-8", dir.file("run")});
  EXPECT_EQ(source.kind(), "utf-8");
  const CharVocab* vocab = source.char_vocab();
  ASSERT_NE(vocab, nullptr);
  const std::vector<char32_t> expected{U'\n', U' ', U'd', U'e', U'h', U'l', U'o', U'r', U'w', U'\u00f6', U'\U0001F600'};
  EXPECT_EQ(vocab->characters(), expected);
  EXPECT_EQ(source.vocab_size(), expected.size());
  EXPECT_EQ(source.size(), 14u);
  const std::vector<std::int32_t> ids = read_all(source);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{4, 3, 5, 5, 6, 0, 8, 9, 7, 5, 2, 1, 10, 0}));
  EXPECT_EQ(vocab->decode(ids), "hello\nw\xc3\xb6rld \xf0\x9f\x98\x80\n");

  const std::string json = testing::read_bytes(dir.file("run/vocab.json"));
  EXPECT_EQ(json,
            "{\"0\": \"\\n\", \"1\": \" \", \"2\": \"d\", \"3\": \"e\", \"4\": \"h\", \"5\": \"l\", \"6\": \"o\", "
            "\"7\": \"r\", \"8\": \"w\", \"9\": \"\xc3\xb6\", \"10\": \"\xf0\x9f\x98\x80\"}");
  EXPECT_EQ(CharVocab::load(dir.file("run/vocab.json")), *vocab);
}

TEST(DataText, ExistingVocabularyIsReusedAndMustCoverTheText) {
  TempDir dir;
  testing::write_bytes(dir.file("big.txt"), "abcdef");
  testing::write_bytes(dir.file("small.txt"), "fad");
  open_dataset({dir.file("big.txt"), "utf-8", dir.path()});
  // The saved six-letter vocabulary keeps its ids for text that uses fewer letters.
  const TokenSource small = open_dataset({dir.file("small.txt"), "utf-8", dir.path()});
  EXPECT_EQ(small.vocab_size(), 6u);
  EXPECT_EQ(read_all(small), (std::vector<std::int32_t>{5, 0, 3}));

  testing::write_bytes(dir.file("other.txt"), "abz");
  expect_error([&] { open_dataset({dir.file("other.txt"), "utf-8", dir.path()}); },
               {dir.file("other.txt"), "U+007A 'z'", "byte offset 2", dir.file("vocab.json")});
}

TEST(DataText, VocabularyJsonFromRwkvLmLoads) {
  TempDir dir;
  // ensure_ascii=True output (\u escapes, a surrogate pair) and ids in any order.
  testing::write_bytes(dir.file("vocab.json"), R"({"1": "\u00e9", "0": "\n", "2": "\ud83d\ude00"})");
  const CharVocab vocab = CharVocab::load(dir.file("vocab.json"));
  EXPECT_EQ(vocab.characters(), (std::vector<char32_t>{U'\n', U'\u00e9', U'\U0001F600'}));
  EXPECT_EQ(vocab.id_of(U'\u00e9'), 1);
  EXPECT_EQ(vocab.id_of(U'x'), std::nullopt);

  const auto expect_bad = [&](const std::string& json, std::initializer_list<std::string> fragments) {
    testing::write_bytes(dir.file("bad.json"), json);
    std::vector<std::string> all{dir.file("bad.json")};
    all.insert(all.end(), fragments.begin(), fragments.end());
    try {
      CharVocab::load(dir.file("bad.json"));
      ADD_FAILURE() << "accepted " << json;
    } catch (const Error& e) {
      for (const auto& fragment : all) EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_bad(R"({"0": "a", "2": "b"})", {"id 2 is outside [0, 2)"});
  expect_bad(R"({"0": "ab"})", {"not exactly one character"});
  expect_bad(R"({"x": "a"})", {"key \"x\" is not a token id"});
  expect_bad(R"({"0": "a", "1": "a"})", {"appears twice"});
  expect_bad(R"(["a"])", {"expected a JSON object"});
  expect_bad(R"({"0": 5})", {"not a string"});
  expect_bad(R"({"0": )", {"not valid JSON"});
}

TEST(DataText, InvalidUtf8NamesFileAndByteOffset) {
  TempDir dir;
  const std::pair<std::string, std::size_t> cases[] = {
      {"ab\xff", 2},                // not a lead byte
      {"abc\xc3", 3},               // truncated two-byte sequence
      {"a\xc0\xaf", 1},             // overlong '/'
      {"xy\xed\xa0\x80", 2},        // UTF-16 surrogate
      {"\xf4\x90\x80\x80", 0},      // above U+10FFFF
      {"ok \xe2\x82\x28 more", 3},  // bad continuation byte
  };
  for (const auto& [text, offset] : cases) {
    testing::write_bytes(dir.file("bad.txt"), text);
    expect_error([&] { open_dataset({dir.file("bad.txt"), "utf-8", ""}); },
                 {dir.file("bad.txt"), "invalid UTF-8 at byte offset " + std::to_string(offset)});
  }
}

TEST(DataText, Utf8DecoderAcceptsEveryScalarValue) {
  for (char32_t c : {U'\0', U'\x7f', U'\x80', U'\u07ff', U'\u0800', U'\ud7ff', U'\ue000', U'\uffff', U'\U00010000',
                     U'\U0010FFFF'}) {
    std::string text;
    append_utf8(text, c);
    std::size_t pos = 0;
    char32_t decoded = 0;
    ASSERT_TRUE(next_code_point(text, pos, decoded)) << std::uint32_t(c);
    EXPECT_EQ(decoded, c);
    EXPECT_EQ(pos, text.size());
  }
}

TEST(DataText, TextNeedsAnExplicitDataType) {
  TempDir dir;
  testing::write_bytes(dir.file("book.txt"), "text");
  expect_error([&] { open_dataset({dir.file("book.txt"), "", ""}); },
               {"cannot tell the data type", "book.txt", "utf-8", "bytes", "rwkv tokenize"});
}

}  // namespace
}  // namespace rwkv::data
