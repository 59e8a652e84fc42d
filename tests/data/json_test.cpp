#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"
#include "data/json.h"

namespace rwkv::data::json {
namespace {

// The message of the rwkv::Error that parsing text throws ("" when it parses).
std::string parse_error(std::string_view text) {
  try {
    parse(text);
  } catch (const rwkv::Error& error) {
    return error.what();
  }
  return "";
}

TEST(DataJson, ParsesScalars) {
  EXPECT_TRUE(parse("null").is_null());
  EXPECT_TRUE(parse(" true ").as_bool());
  EXPECT_FALSE(parse("false").as_bool());
  EXPECT_EQ(parse("\"hi\"").as_string(), "hi");
  EXPECT_DOUBLE_EQ(parse("-1.5e2").as_number(), -150.0);
  EXPECT_DOUBLE_EQ(parse("0.25").as_number(), 0.25);
  EXPECT_EQ(parse("1e-400").as_number(), 0.0);
}

TEST(DataJson, IntegersAreExact) {
  const Value big = parse("9007199254740993");  // 2^53 + 1: not representable as a double
  EXPECT_TRUE(big.is_integer());
  EXPECT_EQ(big.as_int64(), 9007199254740993LL);
  EXPECT_EQ(parse("-9223372036854775808").as_int64(), INT64_MIN);
  EXPECT_EQ(parse("1e3").as_int64(), 1000);
  EXPECT_FALSE(parse("1e3").is_integer());
  EXPECT_THROW(parse("1.5").as_int64(), rwkv::Error);
  // Beyond int64 it is still a number (a double), just not an exact integer.
  const Value huge = parse("92233720368547758080");
  EXPECT_FALSE(huge.is_integer());
  EXPECT_DOUBLE_EQ(huge.as_number(), 92233720368547758080.0);
  EXPECT_THROW(huge.as_int64(), rwkv::Error);
}

TEST(DataJson, ObjectsKeepOrderAndFindKeys) {
  const Value value = parse(R"({"b": 1, "a": [true, null, "x"], "c": {"d": -2}})");
  ASSERT_TRUE(value.is_object());
  const auto& items = value.items();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].first, "b");
  EXPECT_EQ(items[1].first, "a");
  EXPECT_EQ(items[2].first, "c");
  EXPECT_EQ(value.at("a").as_array().size(), 3u);
  EXPECT_EQ(value.at("c").at("d").as_int64(), -2);
  EXPECT_EQ(value.find("zz"), nullptr);
  try {
    value.at("missing_key");
    FAIL() << "at() did not throw";
  } catch (const rwkv::Error& error) {
    EXPECT_NE(std::string(error.what()).find("missing_key"), std::string::npos) << error.what();
  }
}

TEST(DataJson, LargeObjectsUseIndex) {
  std::string text = "{";
  for (int i = 0; i < 1000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(999 - i) + "\":" + std::to_string(i);
  text += "}";
  const Value value = parse(text);
  EXPECT_EQ(value.items().front().first, "k999");
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(value.at("k" + std::to_string(i)).as_int64(), 999 - i);
  EXPECT_EQ(value.find("k1000"), nullptr);
}

TEST(DataJson, Escapes) {
  EXPECT_EQ(parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(parse(R"("\u00e9\u4E2D")").as_string(), "\xC3\xA9\xE4\xB8\xAD");
  EXPECT_EQ(parse(R"("\ud83d\ude00")").as_string(), "\xF0\x9F\x98\x80");  // surrogate pair -> U+1F600
  EXPECT_EQ(parse(R"("\u0000")").as_string(), std::string(1, '\0'));
  EXPECT_EQ(parse("\"h\xC3\xA9llo\"").as_string(), "h\xC3\xA9llo");
}

TEST(DataJson, RejectsBadEscapesAndText) {
  EXPECT_NE(parse_error(R"("\ud83d")").find("surrogate"), std::string::npos);
  EXPECT_NE(parse_error(R"("\ude00")").find("surrogate"), std::string::npos);
  EXPECT_NE(parse_error(R"("\ud83d\u0041")").find("surrogate"), std::string::npos);
  EXPECT_NE(parse_error(R"("\x")").find("invalid escape"), std::string::npos);
  EXPECT_NE(parse_error(R"("\u12G4")").find("hex"), std::string::npos);
  EXPECT_NE(parse_error("\"a\tb\"").find("control character"), std::string::npos);
  EXPECT_NE(parse_error("\"\xC3\x28\"").find("UTF-8"), std::string::npos);
  EXPECT_NE(parse_error("\"\xED\xA0\x80\"").find("UTF-8"), std::string::npos);  // encoded surrogate
  EXPECT_NE(parse_error("\"\xC0\xAF\"").find("UTF-8"), std::string::npos);      // overlong
  EXPECT_NE(parse_error("\"abc").find("unterminated"), std::string::npos);
}

TEST(DataJson, RejectsNonStandardSyntax) {
  for (const char* text : {"", "  ", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "-", "1e", "NaN", "Infinity",
                           "tru", "nul", "'a'", "{a:1}", "[1 2]", "{\"a\" 1}", "1 2", "// c\n1", "1e400",
                           "{\"a\":1,\"a\":2}"}) {
    EXPECT_NE(parse_error(text), "") << "accepted: " << text;
  }
  EXPECT_NE(parse_error("{\"a\":1,\"a\":2}").find("duplicate key \"a\""), std::string::npos);
}

TEST(DataJson, ErrorsGiveLineAndColumn) {
  const std::string message = parse_error("{\n  \"a\": 1,\n  \"b\": tru\n}");
  EXPECT_NE(message.find("line 3, column 8"), std::string::npos) << message;
  const std::string trailing = parse_error("[1, 2]\n\n  x");
  EXPECT_NE(trailing.find("line 3, column 3"), std::string::npos) << trailing;
}

TEST(DataJson, DuplicateKeysGivePosition) {
  // A small object names the repeated key (escapes in it included); a large one points at the object's start.
  const std::string small = parse_error("{\"x\": {\"a\\\"\\\\\": 1,\n  \"a\\\"\\\\\": 2}}");
  EXPECT_NE(small.find("line 2, column 3"), std::string::npos) << small;
  std::string large = "[\n {";
  for (int i = 0; i < 100; ++i) large += "\"k" + std::to_string(i % 99) + "\": 0" + (i < 99 ? "," : "}]");
  const std::string message = parse_error(large);
  EXPECT_NE(message.find("line 2, column 2"), std::string::npos) << message;
  EXPECT_NE(message.find("duplicate key \"k0\""), std::string::npos) << message;
}

TEST(DataJson, RejectsNulBytes) {
  // A NUL byte is not whitespace and ends nothing: content after the value, or an error where it stands.
  EXPECT_NE(parse_error(std::string("[1]\0x", 5)).find("line 1, column 4"), std::string::npos);
  EXPECT_NE(parse_error(std::string("[1] \0", 5)).find("line 1, column 5"), std::string::npos);
  EXPECT_NE(parse_error(std::string("[1,\0]", 5)).find("line 1, column 4"), std::string::npos);
  EXPECT_NE(parse_error(std::string("\"a\0\"", 4)).find("control character"), std::string::npos);
  EXPECT_EQ(parse(std::string("\"a\\u0000\"")).as_string(), std::string("a\0", 2));
}

TEST(DataJson, DepthLimit) {
  const std::string ok = std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']');
  EXPECT_NO_THROW(parse(ok));
  const std::string deep = std::string(kMaxDepth + 1, '[') + std::string(kMaxDepth + 1, ']');
  EXPECT_NE(parse_error(deep).find("nesting deeper"), std::string::npos);
  // Far deeper than any stack could recurse: still a clean error, found before reading further.
  EXPECT_NE(parse_error(std::string(10'000'000, '[')).find("nesting deeper"), std::string::npos);
  std::string mixed;
  for (int i = 0; i < 100'000; ++i) mixed += "{\"a\":[";
  EXPECT_NE(parse_error(mixed).find("nesting deeper"), std::string::npos);
}

TEST(DataJson, WrongKindErrors) {
  const Value value = parse("[1]");
  EXPECT_THROW(value.as_string(), rwkv::Error);
  EXPECT_THROW(value.items(), rwkv::Error);
  EXPECT_THROW(value.find("a"), rwkv::Error);
  try {
    value.as_bool();
  } catch (const rwkv::Error& error) {
    EXPECT_STREQ(error.what(), "JSON: expected a boolean, found an array");
  }
}

TEST(DataJson, SkipsByteOrderMark) { EXPECT_EQ(parse("\xEF\xBB\xBF[1]").as_array().size(), 1u); }

TEST(DataJson, QuoteRoundTrips) {
  const std::string text = std::string("a\"b\\c\n\t\x01\x1F") + "\xC3\xA9\xF0\x9F\x98\x80" + std::string(1, '\0');
  const std::string quoted = quote(text);
  EXPECT_EQ(quoted, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\xC3\xA9\xF0\x9F\x98\x80\\u0000\"");
  EXPECT_EQ(parse(quoted).as_string(), text);
  EXPECT_EQ(quote("a\xFF" "b"), "\"a\xEF\xBF\xBD" "b\"");  // invalid byte -> U+FFFD
}

TEST(DataJson, NumberWriter) {
  EXPECT_EQ(number(0.1), "0.1");
  EXPECT_EQ(number(3.0), "3");
  EXPECT_EQ(parse(number(1e300)).as_number(), 1e300);
  EXPECT_THROW(number(std::numeric_limits<double>::infinity()), rwkv::Error);
  EXPECT_THROW(number(std::numeric_limits<double>::quiet_NaN()), rwkv::Error);
}

}  // namespace
}  // namespace rwkv::data::json
