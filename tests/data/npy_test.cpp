// .npy token files: every accepted dtype and every rejected layout.
#include "data/npy.h"

#include "data/dataset.h"
#include "tests/data/data_test_util.h"

namespace rwkv::data {
namespace {

using testing::expect_error;
using testing::TempDir;

// A .npy file as NumPy writes it: magic, version, header length, dict padded with spaces to a
// multiple of 64 bytes and ending in '\n', then the data.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  if (major == 1) {
    testing::append_le<std::uint16_t>(bytes, static_cast<std::uint16_t>(header.size()));
  } else {
    testing::append_le<std::uint32_t>(bytes, static_cast<std::uint32_t>(header.size()));
  }
  return bytes + header + data;
}

std::string dict_for(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
}

template <typename T>
std::string little_endian(const std::vector<T>& values) {
  std::string bytes;
  for (T v : values) testing::append_le(bytes, v);
  return bytes;
}

template <typename T>
void expect_reads(const std::string& descr, const std::vector<T>& values, int major = 1) {
  SCOPED_TRACE(descr);
  TempDir dir;
  const std::string path = dir.file("tokens.npy");
  testing::write_bytes(
      path, npy_file(dict_for(descr, "(" + std::to_string(values.size()) + ",)"), little_endian(values), major));
  const TokenSource source = open_dataset({path, "", ""});
  EXPECT_EQ(source.kind(), "numpy");
  ASSERT_EQ(source.size(), values.size());
  std::vector<std::int32_t> read(values.size());
  source.read(0, read.size(), read.data());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(read[i], static_cast<std::int32_t>(values[i]));
}

TEST(DataNpy, ReadsEveryIntegerDtype) {
  expect_reads<std::uint16_t>("<u2", {0, 1, 50276, 65535});
  expect_reads<std::int32_t>("<i4", {0, 7, 2147483647});
  expect_reads<std::int64_t>("<i8", {0, 3, 2147483647});
  expect_reads<std::uint8_t>("|u1", {0, 255});
  expect_reads<std::int8_t>("|i1", {0, 127});
  expect_reads<std::int16_t>("<i2", {0, 32767});
  expect_reads<std::uint32_t>("<u4", {0, 2147483647});
  expect_reads<std::uint16_t>("<u2", {4, 5, 6}, 2);  // format version 2.0
  expect_reads<std::uint16_t>("<u2", {}, 1);         // empty array
}

TEST(DataNpy, ShapeWithoutTrailingCommaAndDoubleQuotes) {
  TempDir dir;
  const std::string path = dir.file("q.npy");
  testing::write_bytes(path, npy_file("{\"descr\": \"<u2\", \"fortran_order\": False, \"shape\": (2,)}",
                                      little_endian<std::uint16_t>({8, 9})));
  EXPECT_EQ(open_npy_shard(path).size, 2u);
}

TEST(DataNpy, RejectsBadFiles) {
  TempDir dir;
  const std::string path = dir.file("bad.npy");
  const std::string data = little_endian<std::uint16_t>({1, 2, 3, 4});
  const auto expect_rejected = [&](const std::string& bytes, std::initializer_list<std::string> fragments) {
    testing::write_bytes(path, bytes);
    std::vector<std::string> all{path};
    all.insert(all.end(), fragments.begin(), fragments.end());
    try {
      open_npy_shard(path);
      ADD_FAILURE() << "accepted a bad file";
    } catch (const Error& e) {
      for (const auto& fragment : all) EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_rejected(npy_file(dict_for("<u2", "(2, 2)"), data), {"2-D", "shape (2, 2)", "1-D"});
  expect_rejected(npy_file(dict_for("<u2", "()"), little_endian<std::uint16_t>({1})), {"0-D"});
  expect_rejected(npy_file(dict_for(">u2", "(4,)"), data), {"big-endian"});
  expect_rejected(npy_file(dict_for("<u2", "(4,)", true), data), {"Fortran order"});
  expect_rejected(npy_file(dict_for("<f4", "(2,)"), data), {"'<f4'", "floating point"});
  expect_rejected(npy_file(dict_for("<f8", "(1,)"), data), {"floating point"});
  expect_rejected(npy_file(dict_for("<u8", "(1,)"), data), {"unsupported dtype '<u8'"});
  expect_rejected(npy_file(dict_for("<u2", "(5,)"), data), {"truncated data", "5 elements", "8 bytes"});
  expect_rejected(npy_file(dict_for("<u2", "(3,)"), data), {"extra data"});
  expect_rejected("\x93NUMPX" + npy_file(dict_for("<u2", "(4,)"), data).substr(6), {"not a .npy file", "bad magic"});
  expect_rejected(npy_file(dict_for("<u2", "(4,)"), data).substr(0, 30), {"truncated .npy header"});
  expect_rejected("\x93NUMPY", {"not a .npy file"});
  expect_rejected(npy_file("{'descr': [('a', '<u2')], 'fortran_order': False, 'shape': (4,), }", data),
                  {"bad .npy header", "structured"});
  expect_rejected(npy_file("{'fortran_order': False, 'shape': (4,), }", data), {"no 'descr'"});
  expect_rejected(npy_file(dict_for("<u2", "(4,)"), data, 4), {"unsupported .npy format version 4"});
  expect_error([&] { open_npy_shard(dir.file("missing.npy")); }, {dir.file("missing.npy"), "No such file"});
}

}  // namespace
}  // namespace rwkv::data
