// The BPE tokenizer: token parity with HuggingFace `tokenizers` on committed expected ids (made by
// tests/reference/tokenizer/make_expected.js), round trips, thread safety, and clear errors for files that
// are not byte-level BPE tokenizer.json files. Tests that need the real 20B_tokenizer.json skip without it.
#include "data/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/json.h"
#include "data/unicode.h"

#ifndef RWKV_DEFAULT_TOKENIZER_JSON
#define RWKV_DEFAULT_TOKENIZER_JSON ""
#endif
#ifndef RWKV_TEST_DATA_DIR
#define RWKV_TEST_DATA_DIR "tests/data/files"
#endif

namespace rwkv::data {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

std::string tokenizer_json_path() {
  const char* from_env = std::getenv("RWKV_TOKENIZER_JSON");
  return from_env != nullptr && *from_env != '\0' ? from_env : RWKV_DEFAULT_TOKENIZER_JSON;
}

// The GPT-NeoX 20B tokenizer, loaded once; nullptr when the file is not available.
const Tokenizer* neox_tokenizer() {
  static const std::unique_ptr<Tokenizer> tokenizer = []() -> std::unique_ptr<Tokenizer> {
    const std::string path = tokenizer_json_path();
    if (path.empty() || !std::filesystem::exists(path)) return nullptr;
    return std::make_unique<Tokenizer>(Tokenizer::from_file(path));
  }();
  return tokenizer.get();
}

#define REQUIRE_NEOX_TOKENIZER()                                                          \
  if (neox_tokenizer() == nullptr) {                                                      \
    GTEST_SKIP() << "GPT-NeoX 20B tokenizer.json not found at '" << tokenizer_json_path() \
                 << "'; set RWKV_TOKENIZER_JSON to run this test";                        \
  }

// Readable form of a text for failure messages.
std::string show(std::string_view text) { return json::quote(text.substr(0, 300)); }

std::string show_ids(const std::vector<std::int32_t>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

std::vector<std::int32_t> ids_of(const json::Value& array) {
  std::vector<std::int32_t> ids;
  for (const auto& value : array.as_array()) ids.push_back(static_cast<std::int32_t>(value.as_int64()));
  return ids;
}

// Same as hashValues() in make_expected.js.
template <typename Values>
std::uint32_t hash_values(const Values& values) {
  std::uint32_t hash = 0;
  for (const auto value : values) hash = hash * 1000003u + static_cast<std::uint32_t>(value) + 1u;
  return hash;
}

// The message of the rwkv::Error that loading json_text throws ("" when it loads).
std::string load_error(std::string_view json_text) {
  try {
    Tokenizer::from_json(json_text, "test.json");
  } catch (const rwkv::Error& error) {
    return error.what();
  }
  return "";
}

// ---- a tiny synthetic byte-level BPE (needs no files) ------------------------------------------------

std::string byte_level_char(int byte) {
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int code_point = printable ? b : next++;
    if (b == byte) {
      std::string out;
      unicode::append_utf8(out, static_cast<char32_t>(code_point));
      return out;
    }
  }
  return "";
}

// Vocabulary: the 256 byte tokens (id = byte), then the merges' results in order, then added tokens.
std::string tiny_tokenizer_json(const std::vector<std::pair<std::string, std::string>>& merges,
                                const std::string& extra = "") {
  std::string vocab;
  for (int byte = 0; byte < 256; ++byte) {
    vocab += (byte ? "," : "") + json::quote(byte_level_char(byte)) + ":" + std::to_string(byte);
  }
  std::string merge_list;
  int next_id = 256;
  for (const auto& [left, right] : merges) {
    vocab += "," + json::quote(left + right) + ":" + std::to_string(next_id++);
    merge_list += (merge_list.empty() ? "" : ",") + json::quote(left + " " + right);
  }
  return R"({"version":"1.0","truncation":null,"padding":null,"added_tokens":[)" + extra +
         R"(],"normalizer":{"type":"NFC"},"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,)"
         R"("trim_offsets":true},"post_processor":null,"decoder":{"type":"ByteLevel"},)"
         R"("model":{"type":"BPE","dropout":null,"unk_token":null,"vocab":{)" +
         vocab + R"(},"merges":[)" + merge_list + "]}}";
}

TEST(DataTokenizer, TinyBpeMergesByRankLeftmostFirst) {
  const std::string G = byte_level_char(' ');  // "Ġ"
  const Tokenizer tokenizer = Tokenizer::from_json(
      tiny_tokenizer_json({{G, "t"}, {"h", "e"}, {G + "t", "he"}, {"a", "a"}, {"aa", "a"}, {"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(tokenizer.vocab_size(), 256 + 7);
  EXPECT_EQ(tokenizer.encode("the"), (std::vector<std::int32_t>{'t', 257}));
  EXPECT_EQ(tokenizer.encode(" the"), (std::vector<std::int32_t>{258}));
  // Equal ranks merge left to right; a later, lower-priority merge then applies to the result.
  EXPECT_EQ(tokenizer.encode("aa"), (std::vector<std::int32_t>{259}));
  EXPECT_EQ(tokenizer.encode("aaa"), (std::vector<std::int32_t>{260}));
  EXPECT_EQ(tokenizer.encode("aaaa"), (std::vector<std::int32_t>{259, 259}));
  // "abc": (b,c) has a better rank than (a,b), so it wins although it is further right.
  EXPECT_EQ(tokenizer.encode("abc"), (std::vector<std::int32_t>{'a', 261}));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("abc the aaaa")), "abc the aaaa");
  EXPECT_EQ(tokenizer.token_to_id(G + "t"), 256);
  EXPECT_EQ(tokenizer.id_to_token(257), "he");
  EXPECT_FALSE(tokenizer.token_to_id("zzz").has_value());
}

TEST(DataTokenizer, TinyAddedTokensAndNormalizer) {
  const Tokenizer tokenizer = Tokenizer::from_json(tiny_tokenizer_json(
      {}, R"({"id":256,"content":"<s>","special":true,"single_word":false,"lstrip":false,"rstrip":false,)"
          R"("normalized":false},{"id":257,"content":"e\u0301!","special":false,"single_word":false,)"
          R"("lstrip":false,"rstrip":false,"normalized":true})"));
  EXPECT_EQ(tokenizer.vocab_size(), 258);
  EXPECT_EQ(tokenizer.encode("a<s>b"), (std::vector<std::int32_t>{'a', 256, 'b'}));
  // A normalized added token is matched after NFC, in both spellings of the text.
  EXPECT_EQ(tokenizer.encode("\xC3\xA9!"), (std::vector<std::int32_t>{257}));
  EXPECT_EQ(tokenizer.encode("e\xCC\x81!"), (std::vector<std::int32_t>{257}));
  EXPECT_EQ(tokenizer.decode(std::vector<std::int32_t>{'a', 256, 'b'}), "a<s>b");
  EXPECT_EQ(tokenizer.decode(std::vector<std::int32_t>{'a', 256, 'b'}, /*skip_special_tokens=*/true), "ab");
  EXPECT_EQ(tokenizer.normalize("e\xCC\x81"), "\xC3\xA9");
}

TEST(DataTokenizer, DecodeReplacesBrokenUtf8) {
  const Tokenizer tokenizer = Tokenizer::from_json(tiny_tokenizer_json({}));
  // A lone lead byte and a lone continuation byte each become one U+FFFD.
  EXPECT_EQ(tokenizer.decode(std::vector<std::int32_t>{'a', 0xE2, 'b', 0x80}),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer.decode(std::vector<std::int32_t>{0xE2, 0x82, 0xAC}), "\xE2\x82\xAC");
  EXPECT_THROW(tokenizer.decode(std::vector<std::int32_t>{256}), rwkv::Error);
  EXPECT_THROW(tokenizer.decode(std::vector<std::int32_t>{-1}), rwkv::Error);
}

TEST(DataTokenizer, RejectsInvalidUtf8Input) {
  const Tokenizer tokenizer = Tokenizer::from_json(tiny_tokenizer_json({}));
  try {
    tokenizer.encode("abc\xFF");
    FAIL() << "invalid UTF-8 was accepted";
  } catch (const rwkv::Error& error) {
    EXPECT_NE(std::string(error.what()).find("byte offset 3"), std::string::npos) << error.what();
  }
}

TEST(DataTokenizer, RejectsFilesThatAreNotByteLevelBpe) {
  const std::string good = tiny_tokenizer_json({{"a", "b"}});
  ASSERT_EQ(load_error(good), "");
  const auto replaced = [&](std::string_view from, std::string_view to) {
    std::string text = good;
    const std::size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  const auto expect_error = [](const std::string& message, std::initializer_list<std::string_view> parts) {
    for (const auto part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  expect_error(load_error("[1, 2]"), {"test.json", "top level", "object"});
  expect_error(load_error("{\"model\": "), {"test.json", "JSON parse error", "line 1"});
  expect_error(load_error("{}"), {"test.json", "pre_tokenizer", "missing"});
  expect_error(load_error(replaced(R"("type":"BPE")", R"("type":"WordPiece")")), {"model.type", "WordPiece"});
  expect_error(load_error(replaced(R"("type":"NFC")", R"("type":"NFKC")")), {"normalizer.type", "NFKC"});
  expect_error(load_error(replaced(R"("type":"ByteLevel","add)", R"("type":"Whitespace","add)")),
               {"pre_tokenizer.type"});
  expect_error(load_error(replaced(R"("dropout":null)", R"("dropout":0.1)")), {"model.dropout"});
  expect_error(load_error(replaced(R"("truncation":null)", R"("truncation":{})")), {"truncation"});
  expect_error(load_error(replaced(R"("a b")", R"("a zz")")), {"model.merges[0]", "\"zz\""});
  expect_error(load_error(replaced(R"("a b")", R"("ab")")), {"model.merges[0]", "two tokens"});
  expect_error(load_error(replaced(R"("ab":256)", R"("ab":300)")), {"model.vocab", "256", "dense"});
  expect_error(load_error(replaced(R"("ab":256)", R"("ab":"x")")), {"model.vocab[\"ab\"]", "token id"});
  expect_error(load_error(replaced(R"("vocab":{)", R"("vocab":{"zz":1,)")), {"model.vocab", "id 1 is used twice"});
}

TEST(DataTokenizer, FileErrorsNameTheFile) {
  try {
    Tokenizer::from_file("/nonexistent/dir/tok.json");
    FAIL() << "loaded a missing file";
  } catch (const rwkv::Error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/dir/tok.json"), std::string::npos) << error.what();
  }
  const std::string not_a_tokenizer = std::string(RWKV_TEST_DATA_DIR) + "/tokenizer/parity_variants.json";
  try {
    Tokenizer::from_file(not_a_tokenizer);
    FAIL() << "loaded a file that is not a tokenizer";
  } catch (const rwkv::Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(not_a_tokenizer), std::string::npos) << message;
    EXPECT_NE(message.find("top level"), std::string::npos) << message;
  }
}

// ---- the real GPT-NeoX 20B tokenizer ---------------------------------------------------------------

TEST(DataTokenizer, NeoX20BBasics) {
  REQUIRE_NEOX_TOKENIZER();
  const Tokenizer& tokenizer = *neox_tokenizer();
  EXPECT_EQ(tokenizer.vocab_size(), 50277);
  EXPECT_EQ(tokenizer.id_to_token(0), "<|endoftext|>");
  EXPECT_EQ(tokenizer.id_to_token(1), "<|padding|>");
  EXPECT_EQ(tokenizer.decode(std::vector<std::int32_t>{187}), "\n");  // run.py asserts this
  EXPECT_EQ(tokenizer.token_to_id("\xC4\xA0the"), 253);               // "Ġthe"
  EXPECT_EQ(tokenizer.added_tokens().size(), 25u);
  EXPECT_EQ(tokenizer.encode("Hello world<|endoftext|>  x   y\n\n"),
            (std::vector<std::int32_t>{12092, 1533, 0, 50276, 89, 50275, 90, 535}));
}

TEST(DataTokenizer, NeoX20BParityWithHuggingFaceSample) {
  REQUIRE_NEOX_TOKENIZER();
  const Tokenizer& tokenizer = *neox_tokenizer();
  std::ifstream file(std::string(RWKV_TEST_DATA_DIR) + "/tokenizer/parity_sample.jsonl");
  ASSERT_TRUE(file) << "missing tests/data/files/tokenizer/parity_sample.jsonl";
  std::string line;
  int cases = 0;
  int failures = 0;
  while (std::getline(file, line)) {
    const json::Value expected = json::parse(line);
    const std::string& text = expected.at("text").as_string();
    const std::vector<std::int32_t> want = ids_of(expected.at("ids"));
    const std::vector<std::int32_t> got = tokenizer.encode(text);
    ++cases;
    if (got != want && ++failures <= 10) {
      ADD_FAILURE() << "text " << show(text) << "\n  tokenizers: " << show_ids(want)
                    << "\n  ours:       " << show_ids(got);
    }
    EXPECT_EQ(tokenizer.normalize(text), expected.at("normalized").as_string()) << show(text);
    EXPECT_EQ(tokenizer.decode(want), expected.at("decoded").as_string()) << show(text);
    // Round trip: decoding gives back the normalised text.
    EXPECT_EQ(tokenizer.decode(got), tokenizer.normalize(text)) << show(text);
    // Cutting into the smallest independent pieces changes nothing.
    std::vector<std::int32_t> from_pieces;
    std::string joined;
    for (const std::string_view piece : tokenizer.independent_pieces(text, 1)) {
      tokenizer.encode(piece, from_pieces);
      joined += piece;
    }
    EXPECT_EQ(joined, text);
    EXPECT_EQ(from_pieces, want) << "independent pieces of " << show(text);
  }
  EXPECT_GT(cases, 800);
  EXPECT_EQ(failures, 0) << failures << " of " << cases << " texts differ";
}

TEST(DataTokenizer, NeoX20BParityWithEditedTokenizers) {
  REQUIRE_NEOX_TOKENIZER();
  const std::string original = read_text(tokenizer_json_path());
  const json::Value variants =
      json::parse(read_text(std::string(RWKV_TEST_DATA_DIR) + "/tokenizer/parity_variants.json"));
  for (const json::Value& variant : variants.as_array()) {
    std::string edited = original;
    for (const json::Value& replacement : variant.at("replacements").as_array()) {
      const std::string& from = replacement.as_array().at(0).as_string();
      const std::size_t at = edited.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      edited.replace(at, from.size(), replacement.as_array().at(1).as_string());
    }
    const Tokenizer tokenizer = Tokenizer::from_json(edited);
    int failures = 0;
    for (const json::Value& example : variant.at("cases").as_array()) {
      const std::string& text = example.at("text").as_string();
      const std::vector<std::int32_t> want = ids_of(example.at("ids"));
      const std::vector<std::int32_t> got = tokenizer.encode(text);
      if (got != want && ++failures <= 5) {
        ADD_FAILURE() << variant.at("name").as_string() << ": text " << show(text)
                      << "\n  tokenizers: " << show_ids(want) << "\n  ours:       " << show_ids(got);
      }
    }
    EXPECT_EQ(failures, 0) << variant.at("name").as_string();
  }
}

TEST(DataTokenizer, NeoX20BParityOnFortunes) {
  REQUIRE_NEOX_TOKENIZER();
  const std::string directory = "/usr/share/games/fortunes";
  if (!std::filesystem::is_directory(directory)) {
    GTEST_SKIP() << directory << " not found (apt-get install fortunes)";
  }
  const Tokenizer& tokenizer = *neox_tokenizer();
  const json::Value expected =
      json::parse(read_text(std::string(RWKV_TEST_DATA_DIR) + "/tokenizer/parity_fortunes.json"));
  int compared = 0;
  for (const json::Value& entry : expected.at("files").as_array()) {
    const std::string text = read_text(directory + "/" + entry.at("name").as_string());
    // Another version of the package may have different files; only compare the ones we have ids for.
    if (static_cast<std::int64_t>(text.size()) != entry.at("bytes").as_int64() ||
        hash_values(std::vector<unsigned char>(text.begin(), text.end())) !=
            static_cast<std::uint32_t>(entry.at("bytes_hash").as_int64())) {
      continue;
    }
    const std::vector<std::int32_t> ids = tokenizer.encode(text);
    EXPECT_EQ(static_cast<std::int64_t>(ids.size()), entry.at("ids").as_int64()) << entry.at("name").as_string();
    std::vector<std::int32_t> from_pieces;
    const auto pieces = tokenizer.independent_pieces(text, 1);
    for (const std::string_view piece : pieces) tokenizer.encode(piece, from_pieces);
    EXPECT_EQ(from_pieces, ids) << entry.at("name").as_string() << " in " << pieces.size() << " pieces";
    EXPECT_EQ(hash_values(ids), static_cast<std::uint32_t>(entry.at("ids_hash").as_int64()))
        << entry.at("name").as_string();
    EXPECT_EQ(tokenizer.decode(ids), tokenizer.normalize(text)) << entry.at("name").as_string();
    ++compared;
  }
  if (compared == 0) GTEST_SKIP() << "no file in " << directory << " matches the recorded ones";
}

TEST(DataTokenizer, IndependentPiecesCutBeforeNewlines) {
  const Tokenizer tokenizer = Tokenizer::from_json(tiny_tokenizer_json({}));
  const std::string text = "ab\ncd\n\nef \n gh\n\xC3\xA9\n\n";
  std::vector<std::string> pieces;
  for (const auto piece : tokenizer.independent_pieces(text, 1)) pieces.emplace_back(piece);
  EXPECT_EQ(pieces, (std::vector<std::string>{"ab", "\ncd", "\n\nef \n gh", "\n\xC3\xA9", "\n\n"}));
  EXPECT_EQ(tokenizer.independent_pieces(text, 100).size(), 1u);
  EXPECT_EQ(tokenizer.independent_pieces("", 1).size(), 1u);
  // With add_prefix_space every piece would get its own prefix space: no cutting.
  std::string json_text = tiny_tokenizer_json({});
  json_text.replace(json_text.find("\"add_prefix_space\":false"), 24, "\"add_prefix_space\":true");
  EXPECT_EQ(Tokenizer::from_json(json_text).independent_pieces(text, 1).size(), 1u);
}

TEST(DataTokenizer, NeoX20BSameIdsFromManyThreads) {
  REQUIRE_NEOX_TOKENIZER();
  const Tokenizer& tokenizer = *neox_tokenizer();
  std::vector<std::string> texts;
  std::ifstream file(std::string(RWKV_TEST_DATA_DIR) + "/tokenizer/parity_sample.jsonl");
  std::string line;
  while (std::getline(file, line)) texts.push_back(json::parse(line).at("text").as_string());
  ASSERT_FALSE(texts.empty());
  std::vector<std::vector<std::int32_t>> expected;
  for (const auto& text : texts) expected.push_back(tokenizer.encode(text));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (std::size_t i = t; i < texts.size(); i += 1 + t) {
          if (tokenizer.encode(texts[i]) != expected[i]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace rwkv::data
