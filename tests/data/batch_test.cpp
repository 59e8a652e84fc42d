// Batch assembly: x/y are the window shifted by one, rows follow the sampler, bad ids are reported
// with file and offset; scanning finds the largest id.
#include "data/batch_builder.h"
#include "data/binidx_writer.h"
#include "data/dataset.h"
#include "data/magic_prime.h"
#include "tests/data/data_test_util.h"

namespace rwkv::data {
namespace {

using testing::expect_error;
using testing::TempDir;

// Two shards whose token at global offset i is i % 1000 (uint16 then int32).
std::string write_counting_shards(const TempDir& dir, std::uint64_t first, std::uint64_t second) {
  std::uint64_t next = 0;
  const auto write = [&](const std::string& name, TokenDtype dtype, std::uint64_t count) {
    BinidxWriter writer = BinidxWriter::open(dir.file(name), dtype);
    std::vector<std::int32_t> doc;
    for (std::uint64_t i = 0; i < count; ++i) doc.push_back(std::int32_t(next++ % 1000));
    writer.add_document(doc);
    writer.finish();
  };
  write("s0", TokenDtype::uint16, first);
  write("s1", TokenDtype::int32, second);
  return dir.file("s0") + "," + dir.file("s1");
}

TEST(DataBatch, XIsTheWindowAndYTheWindowShiftedByOne) {
  TempDir dir;
  const TokenSource source = open_dataset({write_counting_shards(dir, 700, 900), "binidx", ""});
  const std::uint64_t ctx_len = 14;  // 114 chunks: 113 is a magic prime within 1% of them (100 chunks have none)
  const std::optional<std::uint64_t> prime = best_magic_prime(source.size(), ctx_len);
  ASSERT_EQ(prime, 113u);
  const MagicPrimeSampler sampler({*prime, ctx_len, 3, 0}, source.size());
  const std::uint64_t micro_bsz = 8;
  for (std::uint64_t rank = 0; rank < 2; ++rank) {
    const BatchBuilder builder(source, sampler, 1000, micro_bsz, rank, 2);
    for (std::uint64_t step = 0; step < 200; ++step) {  // windows cross the shard boundary at 700 sometimes
      const TokenBatch batch = builder.build(step);
      ASSERT_EQ(batch.offsets, sampler.sample_offsets(step, rank, 2, micro_bsz));
      for (std::uint64_t row = 0; row < micro_bsz; ++row) {
        for (std::uint64_t t = 0; t < ctx_len; ++t) {
          ASSERT_EQ(batch.x[row * ctx_len + t], std::int32_t((batch.offsets[row] + t) % 1000));
          ASSERT_EQ(batch.y[row * ctx_len + t], std::int32_t((batch.offsets[row] + t + 1) % 1000));
        }
      }
    }
  }
}

TEST(DataBatch, OutOfVocabularyIdNamesFileAndOffset) {
  TempDir dir;
  const TokenSource source = open_dataset({write_counting_shards(dir, 50, 50), "binidx", ""});
  const SequentialSampler sampler(source.size(), 9);  // windows of 10 tokens at 0, 10, 20, ...
  const BatchBuilder builder(source, sampler, 57, 1);  // ids 57..999 exist
  builder.build(0);                                    // window 0..9 is fine
  expect_error([&] { builder.build(5); },              // window 50..59: id 57 at global offset 57
               {"step 5", "row 0", "window at offset 50", "token id 57", "token offset 7 of " + dir.file("s1.bin"),
                "dataset offset 57", ">= vocab_size 57"});
  // The last token of the window (only in y) is checked too: with windows of 9 tokens, window 5 is 45..53 and
  // has 53 only in y.
  const SequentialSampler nine(source.size(), 8);
  const BatchBuilder strict(source, nine, 53, 1);
  strict.build(4);
  expect_error([&] { strict.build(5); }, {"token id 53", "token offset 3 of " + dir.file("s1.bin")});
}

TEST(DataBatch, NegativeAndOversizedIds) {
  TempDir dir;
  // Written by hand: our writer refuses such ids. One int64 sequence of 6 tokens.
  const std::vector<std::int64_t> ids{1, 2, -5, 3, std::int64_t{1} << 33, 4};
  std::string idx("MMIDIDX\0\0", 9);
  testing::append_le<std::uint64_t>(idx, 1);
  testing::append_le<std::uint8_t>(idx, 5);
  testing::append_le<std::uint64_t>(idx, 1);
  testing::append_le<std::uint64_t>(idx, 2);
  testing::append_le<std::int32_t>(idx, 6);
  testing::append_le<std::int64_t>(idx, 0);
  testing::append_le<std::int64_t>(idx, 0);
  testing::append_le<std::int64_t>(idx, 1);
  std::string bin;
  for (std::int64_t id : ids) testing::append_le(bin, id);
  testing::write_bytes(dir.file("wide.idx"), idx);
  testing::write_bytes(dir.file("wide.bin"), bin);
  const TokenSource source = open_dataset({dir.file("wide"), "binidx", ""});
  std::int32_t out[6];
  source.read(0, 2, out);
  expect_error([&] { source.read(0, 3, out); }, {"negative token id -5", "token offset 2 of " + dir.file("wide.bin")});
  expect_error([&] { source.read(3, 2, out); }, {"token id 8589934592", "does not fit int32"});
  const TokenScan scan = source.scan_tokens();
  EXPECT_EQ(scan.min_id, -5);
  EXPECT_EQ(scan.min_offset, 2u);
  EXPECT_EQ(scan.max_id, std::int64_t{1} << 33);
  EXPECT_EQ(scan.max_offset, 4u);
  expect_error([&] { source.check_vocab(100); }, {"negative token id -5", "token offset 2"});
}

TEST(DataBatch, ScanFindsTheLargestIdAcrossShards) {
  TempDir dir;
  const TokenSource source = open_dataset({write_counting_shards(dir, 3000000, 1500000), "binidx", ""});
  const TokenScan scan = source.scan_tokens();
  EXPECT_EQ(scan.max_id, 999);
  EXPECT_EQ(scan.max_offset, 999u);
  EXPECT_EQ(scan.min_id, 0);
  EXPECT_EQ(source.scan_max_token(), 999);
  source.check_vocab(1000);
  expect_error([&] { source.check_vocab(999); }, {"token id 999", "token offset 999 of " + dir.file("s0.bin")});
}

TEST(DataBatch, RejectsBadShapes) {
  TempDir dir;
  const TokenSource source = open_dataset({write_counting_shards(dir, 10, 0), "binidx", ""});
  const SequentialSampler long_windows(source.size(), 10);
  expect_error([&] { BatchBuilder(source, long_windows, 1000, 1); }, {"shorter than one window", "11 tokens"});
  const SequentialSampler sampler(source.size(), 4);
  const BatchBuilder builder(source, sampler, 1000, 2);
  std::vector<std::int32_t> x(7), y(8);
  expect_error([&] { builder.fill(0, x, y); }, {"micro_bsz * ctx_len = 8", "got 7 and 8"});
}

}  // namespace
}  // namespace rwkv::data
