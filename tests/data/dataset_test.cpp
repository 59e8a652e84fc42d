// Opening datasets from data_file + data_type: detection, globs, lists, errors.
#include "data/dataset.h"

#include "data/binidx_writer.h"
#include "tests/data/data_test_util.h"

namespace rwkv::data {
namespace {

using testing::expect_error;
using testing::TempDir;

void write_binidx(const std::string& prefix, std::vector<std::int32_t> doc) {
  BinidxWriter writer = BinidxWriter::open(prefix, TokenDtype::uint16);
  writer.add_document(doc);
  writer.finish();
}

TEST(DataDataset, DetectsTheTypeFromNames) {
  TempDir dir;
  write_binidx(dir.file("pile_text_document"), {1, 2});
  EXPECT_EQ(detect_data_type(dir.file("pile_text_document")), "binidx");
  EXPECT_EQ(detect_data_type(dir.file("pile_text_document.bin")), "binidx");
  EXPECT_EQ(detect_data_type(dir.file("pile_text_document.idx")), "binidx");
  EXPECT_EQ(detect_data_type(dir.file("pile_*")), "binidx");
  EXPECT_EQ(detect_data_type(dir.file("*.bin")), "binidx");
  EXPECT_EQ(detect_data_type("x.npy"), "numpy");
  EXPECT_EQ(detect_data_type("a.npy,b.npy"), "numpy");
  expect_error([&] { detect_data_type(dir.file("nothing")); }, {"cannot tell the data type", "nothing"});
  expect_error([] { detect_data_type(""); }, {"no data file given"});
}

TEST(DataDataset, GlobsAndListsExpandInOrder) {
  TempDir dir;
  write_binidx(dir.file("b"), {2});
  write_binidx(dir.file("a"), {1});
  write_binidx(dir.file("c"), {3});
  EXPECT_EQ(expand_data_files(dir.file("*"), "binidx"),
            (std::vector<std::string>{dir.file("a"), dir.file("b"), dir.file("c")}));
  EXPECT_EQ(expand_data_files(dir.file("[bc].bin") + ", " + dir.file("a.idx"), "binidx"),
            (std::vector<std::string>{dir.file("b"), dir.file("c"), dir.file("a")}));
  const TokenSource source = open_dataset({dir.file("c") + "," + dir.file("?"), "", ""});
  std::vector<std::int32_t> all(source.size());
  source.read(0, all.size(), all.data());
  EXPECT_EQ(all, (std::vector<std::int32_t>{3, 1, 2, 3}));
  expect_error([&] { expand_data_files(dir.file("*.npy"), "numpy"); }, {"no files match", "*.npy"});
}

TEST(DataDataset, UnknownTypeAndMissingFiles) {
  TempDir dir;
  write_binidx(dir.file("a"), {1});
  expect_error([&] { open_dataset({dir.file("a"), "parquet", ""}); }, {"unknown data_type 'parquet'", "binidx"});
  expect_error([&] { open_dataset({dir.file("missing.npy"), "", ""}); }, {dir.file("missing.npy"), "cannot open"});
  expect_error([&] { open_dataset({dir.file("missing.txt"), "bytes", ""}); }, {dir.file("missing.txt")});
}

}  // namespace
}  // namespace rwkv::data
