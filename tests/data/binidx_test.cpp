// binidx: our writer and an independent Python writer read back identically; shards concatenate;
// every corruption is reported with the file and the problem.
#include "data/binidx.h"

#include <filesystem>
#include <limits>
#include <numeric>

#include "data/binidx_writer.h"
#include "data/dataset.h"
#include "data/token_source.h"
#include "tests/data/data_test_util.h"

namespace rwkv::data {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<std::vector<std::int64_t>> sample_documents(std::uint64_t largest_id) {
  return {{0, 1, 2, static_cast<std::int64_t>(largest_id)}, {}, {7}, {5, 4, 3, 2, 1, 0, 9, 8}};
}

std::vector<std::int32_t> flatten(const std::vector<std::vector<std::int64_t>>& documents) {
  std::vector<std::int32_t> all;
  for (const auto& doc : documents) all.insert(all.end(), doc.begin(), doc.end());
  return all;
}

BinidxSummary write_with_cpp(const std::string& prefix, TokenDtype dtype,
                             const std::vector<std::vector<std::int64_t>>& documents) {
  BinidxWriter writer = BinidxWriter::open(prefix, dtype);
  for (const auto& doc : documents) writer.add_document(std::span<const std::int64_t>(doc));
  return writer.finish();
}

std::vector<std::int32_t> read_all(const TokenSource& source) {
  std::vector<std::int32_t> tokens(source.size());
  source.read(0, source.size(), tokens.data());
  return tokens;
}

// Largest id that every reader path keeps (ids are read as int32).
std::uint64_t largest_readable(TokenDtype dtype) {
  return std::min<std::uint64_t>(max_token_id(dtype), std::numeric_limits<std::int32_t>::max());
}

const TokenDtype kBinidxDtypes[] = {TokenDtype::uint8,  TokenDtype::int8,  TokenDtype::int16,
                                    TokenDtype::uint16, TokenDtype::int32, TokenDtype::int64};

TEST(DataBinidx, OwnWriterRoundTripsEveryDtype) {
  TempDir dir;
  for (TokenDtype dtype : kBinidxDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto documents = sample_documents(largest_readable(dtype));
    const std::string prefix = dir.file(std::string("own_") + dtype_name(dtype));
    const BinidxSummary summary = write_with_cpp(prefix, dtype, documents);
    EXPECT_EQ(summary.documents, documents.size());
    EXPECT_EQ(summary.tokens, 13u);
    EXPECT_EQ(summary.bin_bytes, 13 * itemsize(dtype));
    EXPECT_EQ(std::filesystem::file_size(prefix + ".bin"), summary.bin_bytes);
    EXPECT_EQ(std::filesystem::file_size(prefix + ".idx"), summary.idx_bytes);
    EXPECT_EQ(summary.idx_bytes, 34u + 12 * 4 + 8 * 5);

    const TokenSource source = open_dataset({prefix, "binidx", ""});
    EXPECT_EQ(source.dtype_name(), dtype_name(dtype));
    EXPECT_EQ(source.documents(), documents.size());
    EXPECT_EQ(read_all(source), flatten(documents));
    EXPECT_FALSE(std::filesystem::exists(prefix + ".bin.partial"));
    EXPECT_FALSE(std::filesystem::exists(prefix + ".idx.partial"));
  }
}

TEST(DataBinidx, IndependentPythonWriterReadsIdentically) {
  if (!testing::have_python3()) GTEST_SKIP() << "python3 not found; the independent-writer test needs it";
  TempDir dir;
  for (TokenDtype dtype : kBinidxDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto documents = sample_documents(largest_readable(dtype));
    std::string listing;
    for (const auto& doc : documents) {
      for (std::size_t i = 0; i < doc.size(); ++i) listing += (i ? " " : "") + std::to_string(doc[i]);
      listing += "\n";
    }
    testing::write_bytes(dir.file("tokens.txt"), listing);
    const std::string python_prefix = dir.file(std::string("py_") + dtype_name(dtype));
    const std::string command = "python3 " + testing::python_writer() + " " + python_prefix + " --dtype " +
                                dtype_name(dtype) + " --tokens " + dir.file("tokens.txt");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;

    const TokenSource source = open_dataset({python_prefix, "binidx", ""});
    EXPECT_EQ(read_all(source), flatten(documents));
    EXPECT_EQ(source.documents(), documents.size());

    // Both writers follow the same published format, so the files are byte-identical.
    const std::string cpp_prefix = dir.file(std::string("cpp_") + dtype_name(dtype));
    write_with_cpp(cpp_prefix, dtype, documents);
    EXPECT_EQ(testing::read_bytes(cpp_prefix + ".bin"), testing::read_bytes(python_prefix + ".bin"));
    EXPECT_EQ(testing::read_bytes(cpp_prefix + ".idx"), testing::read_bytes(python_prefix + ".idx"));
  }
}

TEST(DataBinidx, PythonSyntheticDatasetMatchesItsFormula) {
  if (!testing::have_python3()) GTEST_SKIP() << "python3 not found";
  TempDir dir;
  const std::string prefix = dir.file("synthetic");
  const std::string command =
      "python3 " + testing::python_writer() + " " + prefix + " --synthetic 5000 --doc_len 300 --vocab 50277";
  ASSERT_EQ(std::system(command.c_str()), 0);
  const TokenSource source = open_dataset({prefix + ".bin", "", ""});
  ASSERT_EQ(source.size(), 5000u);
  EXPECT_EQ(source.documents(), 17u);  // 16 of 300 tokens, one of 200
  const auto tokens = read_all(source);
  for (std::int64_t i = 0; i < 5000; ++i) ASSERT_EQ(tokens[std::size_t(i)], (i * 7919 + 13) % 50277) << i;
}

TEST(DataBinidx, ShardsFormOneStreamAndWindowsCrossBoundaries) {
  TempDir dir;
  // Three shards of different dtypes and sizes (one empty); token value = its global offset.
  write_with_cpp(dir.file("part-a"), TokenDtype::uint16, {{0, 1, 2}, {3, 4}});
  write_with_cpp(dir.file("part-b"), TokenDtype::int32, {});
  write_with_cpp(dir.file("part-c"), TokenDtype::uint8, {{5, 6, 7, 8, 9, 10, 11}});
  const TokenSource source = open_dataset({dir.file("part-*"), "", ""});
  ASSERT_EQ(source.shards().size(), 3u);
  EXPECT_EQ(source.kind(), "binidx");
  EXPECT_EQ(source.size(), 12u);
  EXPECT_EQ(source.documents(), 3u);
  EXPECT_EQ(source.dtype_name(), "mixed (uint16, int32, uint8)");
  for (std::uint64_t offset = 0; offset < 12; ++offset) {
    for (std::uint64_t count = 0; offset + count <= 12; ++count) {
      std::vector<std::int32_t> window(count);
      source.read(offset, count, window.data());
      for (std::uint64_t i = 0; i < count; ++i) ASSERT_EQ(window[i], std::int32_t(offset + i)) << offset << "+" << i;
    }
  }
  EXPECT_EQ(source.describe_offset(6), "token offset 1 of " + dir.file("part-c.bin") + " (dataset offset 6)");
  std::int32_t out[2];
  expect_error([&] { source.read(11, 2, out); }, {"past the end", "12 tokens"});

  // A comma list keeps its order.
  const TokenSource reversed = open_dataset({dir.file("part-c") + "," + dir.file("part-a.idx"), "binidx", ""});
  std::vector<std::int32_t> all(reversed.size());
  reversed.read(0, all.size(), all.data());
  EXPECT_EQ(all, (std::vector<std::int32_t>{5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4}));
}

// ---- validation ----

class DataBinidxValidation : public ::testing::Test {
protected:
  void SetUp() override {
    prefix_ = dir_.file("good");
    write_with_cpp(prefix_, TokenDtype::uint16, {{1, 2, 3}, {4, 5}});
    idx_ = testing::read_bytes(prefix_ + ".idx");
    bin_ = testing::read_bytes(prefix_ + ".bin");
  }
  // Writes idx/bin as prefix "bad" and expects opening it to fail with these fragments.
  void expect_open_error(const std::string& idx, const std::string& bin, std::initializer_list<std::string> fragments) {
    const std::string bad = dir_.file("bad");
    testing::write_bytes(bad + ".idx", idx);
    testing::write_bytes(bad + ".bin", bin);
    expect_error([&] { open_binidx_shard(bad); }, fragments);
  }
  std::string bad_idx() const { return dir_.file("bad.idx"); }
  std::string bad_bin() const { return dir_.file("bad.bin"); }

  TempDir dir_;
  std::string prefix_;
  std::string idx_;
  std::string bin_;
};

TEST_F(DataBinidxValidation, GoodFilesOpen) {
  const TokenShard shard = open_binidx_shard(prefix_);
  EXPECT_EQ(shard.size, 5u);
  EXPECT_EQ(shard.documents, 2u);
}

TEST_F(DataBinidxValidation, WrongMagic) {
  std::string idx = idx_;
  idx[0] = 'X';
  expect_open_error(idx, bin_, {bad_idx(), "bad magic", "58 4d 49 44"});
}

TEST_F(DataBinidxValidation, WrongVersion) {
  std::string idx = idx_;
  idx[9] = 2;
  expect_open_error(idx, bin_, {bad_idx(), "unsupported binidx version 2"});
}

TEST_F(DataBinidxValidation, FloatDtypeCodes) {
  for (char code : {6, 7}) {
    std::string idx = idx_;
    idx[17] = code;
    expect_open_error(idx, bin_, {bad_idx(), "dtype code " + std::to_string(code), "float64", "integer"});
  }
}

TEST_F(DataBinidxValidation, UnknownDtypeCode) {
  for (char code : {0, 9, 100}) {
    std::string idx = idx_;
    idx[17] = code;
    expect_open_error(idx, bin_, {bad_idx(), "unknown dtype code " + std::to_string(code)});
  }
}

TEST_F(DataBinidxValidation, TruncatedIdx) {
  expect_open_error(idx_.substr(0, 20), bin_, {bad_idx(), "truncated", "header alone needs 34"});
  expect_open_error(idx_.substr(0, idx_.size() - 3), bin_, {bad_idx(), "truncated", "2 sequences", "3 doc_idx"});
  expect_open_error(idx_ + "junk", bin_, {bad_idx(), "longer than its header describes"});
  std::string huge = idx_;  // an absurd sequence count must not overflow the size arithmetic
  for (int i = 18; i < 26; ++i) huge[std::size_t(i)] = '\xff';
  expect_open_error(huge, bin_, {bad_idx(), "truncated", "18446744073709551615 sequences"});
}

TEST_F(DataBinidxValidation, TruncatedOrLongBin) {
  expect_open_error(idx_, bin_.substr(0, bin_.size() - 2), {bad_bin(), "has 8 bytes", "describes 10", "truncated"});
  expect_open_error(idx_, bin_.substr(0, 3), {bad_bin(), "truncated"});
  expect_open_error(idx_, bin_ + "xx", {bad_bin(), "longer than its index"});
}

TEST_F(DataBinidxValidation, SizesAndPointersDisagree) {
  std::string idx = idx_;
  idx[34] = 4;  // size[0]: 3 -> 4 tokens, pointer[1] still says 6 bytes
  expect_open_error(idx, bin_, {bad_idx(), "sizes and pointers disagree at sequence 1", "pointer 6", "expected 8"});

  idx = idx_;
  idx[34 + 8] = 1;  // pointer[0] = 1 instead of 0
  expect_open_error(idx, bin_, {bad_idx(), "disagree at sequence 0", "the first pointer"});

  idx = idx_;
  for (int i = 34; i < 38; ++i) idx[std::size_t(i)] = '\xff';  // size[0] = -1
  expect_open_error(idx, bin_, {bad_idx(), "sequence 0 has negative size -1"});
}

TEST_F(DataBinidxValidation, BadDocIdx) {
  std::string idx = idx_;
  idx[34 + 24 + 8] = 5;  // doc_idx[1] = 5 > 2 sequences
  expect_open_error(idx, bin_, {bad_idx(), "doc_idx[1] = 5", "larger than the sequence count"});
}

TEST_F(DataBinidxValidation, MissingFiles) {
  expect_error([&] { open_binidx_shard(dir_.file("nothing")); },
               {dir_.file("nothing.idx"), "cannot open", "No such file"});
  std::filesystem::remove(prefix_ + ".bin");
  expect_error([&] { open_binidx_shard(prefix_); }, {prefix_ + ".bin", "No such file"});
  expect_error([&] { open_dataset({dir_.file("none-*"), "binidx", ""}); }, {"no binidx files match", "none-*"});
}

// ---- writer ----

TEST(DataBinidxWriter, RejectsIdsOutsideTheDtype) {
  TempDir dir;
  BinidxWriter writer = BinidxWriter::open(dir.file("w"), TokenDtype::uint16);
  const std::vector<std::int32_t> good{1, 65535};
  writer.add_document(good);
  const std::vector<std::int32_t> too_big{3, 65536};
  expect_error([&] { writer.add_document(too_big); },
               {dir.file("w"), "token id 65536", "document 1, position 1", "uint16", "0..65535"});
  const std::vector<std::int64_t> negative{-1};
  expect_error([&] { writer.add_document(negative); }, {"token id -1", "uint16"});
  EXPECT_EQ(writer.documents(), 1u);  // a rejected document leaves nothing behind
  EXPECT_EQ(writer.finish().tokens, 2u);
  expect_error([&] { BinidxWriter::open(dir.file("u32"), TokenDtype::uint32); }, {"no dtype code for uint32"});
}

TEST(DataBinidxWriter, UnfinishedWriteLeavesNoIndex) {
  TempDir dir;
  const std::string prefix = dir.file("interrupted");
  {
    BinidxWriter writer = BinidxWriter::open(prefix, TokenDtype::uint16);
    const std::vector<std::int32_t> doc{1, 2, 3};
    writer.add_document(doc);
    EXPECT_TRUE(std::filesystem::exists(prefix + ".bin.partial"));
    EXPECT_FALSE(std::filesystem::exists(prefix + ".idx"));
    EXPECT_FALSE(std::filesystem::exists(prefix + ".bin"));
  }  // destroyed without finish(): as if interrupted
  EXPECT_FALSE(std::filesystem::exists(prefix + ".idx"));
  EXPECT_FALSE(std::filesystem::exists(prefix + ".bin"));
  EXPECT_FALSE(std::filesystem::exists(prefix + ".bin.partial"));
}

TEST(DataBinidxWriter, RewriteReplacesBothFiles) {
  TempDir dir;
  const std::string prefix = dir.file("again");
  write_with_cpp(prefix, TokenDtype::uint16, {{1, 2, 3, 4}});
  {
    // While a new write is in progress the old dataset stays intact and readable.
    BinidxWriter writer = BinidxWriter::open(prefix, TokenDtype::int32);
    const std::vector<std::int32_t> doc{9, 8};
    writer.add_document(doc);
    EXPECT_EQ(open_dataset({prefix, "binidx", ""}).size(), 4u);
    writer.finish();
  }
  const TokenSource source = open_dataset({prefix, "binidx", ""});
  EXPECT_EQ(source.size(), 2u);
  EXPECT_EQ(source.dtype_name(), "int32");
}

TEST(DataBinidxWriter, DtypeForVocabulary) {
  EXPECT_EQ(token_dtype_for_vocab(256), TokenDtype::uint16);
  EXPECT_EQ(token_dtype_for_vocab(50277), TokenDtype::uint16);
  EXPECT_EQ(token_dtype_for_vocab(65499), TokenDtype::uint16);
  EXPECT_EQ(token_dtype_for_vocab(65500), TokenDtype::int32);
  EXPECT_EQ(token_dtype_for_vocab(65536), TokenDtype::int32);
  for (TokenDtype dtype : kBinidxDtypes) EXPECT_EQ(dtype_from_binidx_code(binidx_code(dtype)), dtype);
  EXPECT_EQ(dtype_from_binidx_code(6), std::nullopt);
  EXPECT_EQ(dtype_from_binidx_code(7), std::nullopt);
  EXPECT_EQ(parse_token_dtype("int64"), TokenDtype::int64);
  expect_error([] { parse_token_dtype("float32"); }, {"unknown token dtype 'float32'"});
}

}  // namespace
}  // namespace rwkv::data
