// PyTorch .pth interop: the zip container (CRC-32, alignment, ZIP64, atomic writes), the state-dict pickle
// (writer, and the reader on files real torch wrote), export/import round trips in every dtype, and a clear
// rwkv::Error for each kind of bad input.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "tests/test_util.h"
#include "train/model/model.h"
#include "train/io/pth_io.h"
#include "train/io/pth_pickle.h"
#include "train/io/pth_zip.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

using testing::ScratchDir;

using testing::expect_error;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

bool contains(const std::vector<uint8_t>& haystack, const std::string& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

// ---------------------------------------------------------------------------------------------------------
// zip

TEST(PthZip, Crc32KnownValues) {
  EXPECT_EQ(pth::crc32("", 0), 0u);
  EXPECT_EQ(pth::crc32("123456789", 9), 0xCBF43926u);
  const std::string text = "The quick brown fox jumps over the lazy dog";
  EXPECT_EQ(pth::crc32(text.data(), text.size()), 0x414FA339u);
  // In pieces of every split point (the 8-byte fast path and the byte tail agree).
  for (size_t split = 0; split <= text.size(); ++split) {
    EXPECT_EQ(pth::crc32(text.data() + split, text.size() - split, pth::crc32(text.data(), split)), 0x414FA339u);
  }
}

std::vector<uint8_t> pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 31 + seed);
  return bytes;
}

void write_three_entries(const std::string& path, const pth::ZipWriterOptions& options) {
  pth::ZipWriter zip(path, options);
  zip.add("archive/data.pkl", pattern(100, 1));
  zip.add("archive/empty", {});
  zip.add("archive/data/0", pattern(5000, 2));
  zip.finish();
}

void expect_three_entries(const std::string& path) {
  const pth::ZipReader zip(path);
  ASSERT_EQ(zip.entries().size(), 3u);
  EXPECT_EQ(zip.entries()[0].name, "archive/data.pkl");
  EXPECT_EQ(zip.entries()[2].name, "archive/data/0");
  for (const pth::ZipEntry& entry : zip.entries()) EXPECT_EQ(entry.data_offset % 64, 0u) << entry.name;
  const auto first = zip.read(*zip.find("archive/data.pkl"));
  EXPECT_EQ(std::vector<uint8_t>(first.begin(), first.end()), pattern(100, 1));
  EXPECT_EQ(zip.read(*zip.find("archive/empty")).size(), 0u);
  const auto third = zip.read(*zip.find("archive/data/0"));
  EXPECT_EQ(std::vector<uint8_t>(third.begin(), third.end()), pattern(5000, 2));
  EXPECT_EQ(zip.find("archive/nothing"), nullptr);
}

TEST(PthZip, RoundTripAlignedAndAtomic) {
  ScratchDir dir;
  const std::string path = dir.file("a.zip");
  {
    pth::ZipWriter zip(path, {});
    zip.add("x", pattern(10, 0));
    EXPECT_FALSE(std::filesystem::exists(path)) << "the final name must not appear before finish()";
  }  // destroyed unfinished: nothing is left behind, not even the temporary file
  EXPECT_EQ(dir.file_count(), 0u);

  write_three_entries(path, {});
  EXPECT_EQ(dir.file_count(), 1u);
  expect_three_entries(path);
  const std::vector<uint8_t> bytes = read_bytes(path);
  EXPECT_FALSE(contains(bytes, std::string("PK\x06\x06", 4))) << "a small archive needs no ZIP64 end record";
}

TEST(PthZip, ForcedZip64RoundTrip) {
  ScratchDir dir;
  const std::string path = dir.file("z64.zip");
  write_three_entries(path, {.zip64_threshold = 0});
  const std::vector<uint8_t> bytes = read_bytes(path);
  EXPECT_TRUE(contains(bytes, std::string("PK\x06\x06", 4))) << "no ZIP64 end record";
  EXPECT_TRUE(contains(bytes, std::string("PK\x06\x07", 4))) << "no ZIP64 locator";
  expect_three_entries(path);
  // A threshold between the sizes: only some fields go to ZIP64 (the mixed layout of a large model).
  write_three_entries(path, {.zip64_threshold = 150});
  expect_three_entries(path);
}

TEST(PthZip, BadArchives) {
  ScratchDir dir;
  const std::string path = dir.file("a.zip");
  write_three_entries(path, {});
  const std::vector<uint8_t> good = read_bytes(path);

  write_bytes(dir.file("text"), std::vector<uint8_t>(100, 'x'));
  expect_error([&] { pth::ZipReader r(dir.file("text")); }, {dir.file("text"), "not a zip archive"});
  write_bytes(dir.file("empty"), {});
  expect_error([&] { pth::ZipReader r(dir.file("empty")); }, {"not a zip archive"});
  expect_error([&] { pth::ZipReader r(dir.file("absent")); }, {dir.file("absent"), "cannot open"});

  // Every truncation is an rwkv::Error (never a crash); cutting off the end says "truncated".
  for (size_t keep = 0; keep < good.size(); keep += 61) {
    write_bytes(dir.file("cut"), std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(keep)));
    EXPECT_THROW(pth::ZipReader r(dir.file("cut")), Error) << "kept " << keep << " bytes";
  }
  write_bytes(dir.file("cut"), std::vector<uint8_t>(good.begin(), good.begin() + 3000));
  expect_error([&] { pth::ZipReader r(dir.file("cut")); }, {"truncated zip archive"});

  // Any byte of the ZIP64 directory and end records changed: read or refused with an rwkv::Error, never a crash.
  write_three_entries(dir.file("z64"), {.zip64_threshold = 0});
  const std::vector<uint8_t> zip64 = read_bytes(dir.file("z64"));
  const size_t directory = pth::ZipReader(dir.file("z64")).entries().back().data_offset + 5000;
  for (size_t at = directory; at < zip64.size(); ++at) {
    for (int value : {0x00, 0x07, 0x40, 0xff}) {
      std::vector<uint8_t> bad = zip64;
      bad[at] = static_cast<uint8_t>(value);
      write_bytes(dir.file("bad"), bad);
      try {
        const pth::ZipReader reader(dir.file("bad"));
        for (const pth::ZipEntry& entry : reader.entries()) reader.read(entry);
      } catch (const Error&) {
      }
    }
  }

  // One flipped data byte: the CRC check names the entry.
  std::vector<uint8_t> flipped = good;
  const pth::ZipReader reader(path);
  flipped[reader.find("archive/data/0")->data_offset + 1234] ^= 0x40;
  write_bytes(dir.file("flipped"), flipped);
  const pth::ZipReader bad(dir.file("flipped"));
  expect_error([&] { bad.read(*bad.find("archive/data/0")); }, {"archive/data/0", "CRC-32 mismatch", "corrupt"});
  EXPECT_NO_THROW(bad.read(*bad.find("archive/data.pkl")));
}

// ---------------------------------------------------------------------------------------------------------
// pickle

pth::TensorRecord record(std::string name, std::string type, std::string key, int64_t numel, int64_t offset,
                         std::vector<int64_t> size, std::vector<int64_t> stride) {
  pth::TensorRecord r;
  r.name = std::move(name);
  r.storage = {std::move(type), std::move(key), "cpu", numel};
  r.offset = offset;
  r.size = std::move(size);
  r.stride = std::move(stride);
  return r;
}

TEST(PthPickle, WriterReaderRoundTrip) {
  std::vector<pth::TensorRecord> records{
      record("emb.weight", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1}),
      record("blocks.0.att.time_mix_k", "BFloat16Storage", "1", 5, 2, {1, 1, 3}, {3, 3, 1}),
      record("big", "HalfStorage", "2", 5000000000, 70000, {50000, 100000}, {100000, 1}),
      record("rank4", "FloatStorage", "3", 16, 0, {2, 2, 2, 2}, {8, 4, 2, 1}),
      record("scalar", "FloatStorage", "4", 1, 0, {}, {}),
  };
  for (int i = 0; i < 300; ++i) records.push_back(record("t" + std::to_string(i), "FloatStorage",
                                                         std::to_string(5 + i), 1, 0, {1}, {1}));  // > 256 memo
  const std::vector<uint8_t> pickle = pth::write_state_dict_pickle(records);
  const std::vector<pth::TensorRecord> back = pth::read_state_dict_pickle(pickle, "test");
  ASSERT_EQ(back.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(back[i].name, records[i].name);
    EXPECT_EQ(back[i].storage.type, records[i].storage.type);
    EXPECT_EQ(back[i].storage.key, records[i].storage.key);
    EXPECT_EQ(back[i].storage.location, "cpu");
    EXPECT_EQ(back[i].storage.numel, records[i].storage.numel);
    EXPECT_EQ(back[i].offset, records[i].offset);
    EXPECT_EQ(back[i].size, records[i].size);
    EXPECT_EQ(back[i].stride, records[i].stride);
  }
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

TEST(PthPickle, RefusesWhatAStateDictDoesNotUse) {
  using namespace std::string_literals;
  // INT (protocol 0) at offset 3.
  expect_error([] { pth::read_state_dict_pickle(bytes_of("\x80\x02}I1\n."s), "f.pth: data.pkl"); },
               {"f.pth: data.pkl", "unsupported pickle opcode 0x49 ('I')", "offset 3"});
  expect_error([] { pth::read_state_dict_pickle(bytes_of("\x80\x02]q\x00."s), "w"); },
               {"the pickled object is a list, expected a dict"});
  expect_error([] { pth::read_state_dict_pickle(bytes_of("\x80\x02}q\x00(X\x01\x00\x00\x00" "aK\x05u."s), "w"); },
               {"'a' holds a int, not a tensor"});
  expect_error([] { pth::read_state_dict_pickle(bytes_of("\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00ls" "\x85R."s), "w"); },
               {"unsupported callable os.system"});
  expect_error([] { pth::read_state_dict_pickle(bytes_of("\x80\x02}X\x10\x00\x00\x00" "ab"s), "w"); },
               {"truncated pickle"});
  expect_error([] { pth::read_state_dict_pickle(bytes_of("\x80\x02}h\x07."s), "w"); },
               {"memo entry 7 was never stored"});
  expect_error([] { pth::read_state_dict_pickle(bytes_of("\x80\x02u."s), "w"); }, {"no MARK"});
  // Every truncation of a real state-dict pickle is an error, never a crash.
  const std::vector<uint8_t> good = pth::write_state_dict_pickle({record("a", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1})});
  for (size_t keep = 0; keep < good.size(); ++keep) {
    EXPECT_THROW(pth::read_state_dict_pickle(std::span(good.data(), keep), "w"), Error) << keep;
  }
  // Any byte changed to anything: parsed or refused with an rwkv::Error, never a crash.
  for (size_t at = 0; at < good.size(); ++at) {
    for (int value : {0x00, 0x01, 0x28, 0x2e, 0x71, 0x7f, 0x80, 0x85, 0xff}) {
      std::vector<uint8_t> bad = good;
      bad[at] = static_cast<uint8_t>(value);
      try {
        pth::read_state_dict_pickle(bad, "w");
      } catch (const Error&) {
      }
    }
  }
  // A million nested tuples are refused before they could exhaust the stack when freed.
  std::string deep = "\x80\x02)";
  deep += std::string(1000000, '\x85');
  expect_error([&] { pth::read_state_dict_pickle(bytes_of(deep + "."), "w"); }, {"nested more than 1000 deep"});
}

// The committed fixture was written by Debian's torch 1.13: torch.save(OrderedDict(a=arange(6).reshape(2, 3),
// b=(arange(3)/4).bfloat16().reshape(1, 1, 3), c=(arange(4) - 1.5).half(), d.t=arange(6).reshape(2, 3).t())).
TEST(PthPickle, ReadsAFileRealTorchWrote) {
  const std::string path = std::string(RWKV_SOURCE_DIR) + "/tests/train/files/torch_state_dict.pth";
  const NamedTensors tensors = read_pth_tensors(path);
  ASSERT_EQ(tensors.size(), 4u);
  EXPECT_EQ(tensors[0].first, "a");
  EXPECT_EQ(tensors[0].second.shape(), (Shape{2, 3}));
  EXPECT_EQ(tensors[0].second.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(tensors[1].first, "b");
  EXPECT_EQ(tensors[1].second.shape(), (Shape{1, 1, 3}));
  EXPECT_EQ(tensors[1].second.to_vector<float>(), (std::vector<float>{0, 0.25f, 0.5f}));
  EXPECT_EQ(tensors[2].first, "c");
  EXPECT_EQ(tensors[2].second.to_vector<float>(), (std::vector<float>{-1.5f, -0.5f, 0.5f, 1.5f}));
  EXPECT_EQ(tensors[3].first, "d.t");  // a transposed view: strides (1, 3)
  EXPECT_EQ(tensors[3].second.shape(), (Shape{3, 2}));
  EXPECT_EQ(tensors[3].second.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

// Python with torch, when present, writes more variants at run time: a Module's state_dict (OrderedDict with
// _metadata, so BUILD), pickle protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE), Parameters, a plain dict.
TEST(PthPickle, ReadsTorchVariantsWhenPythonIsAvailable) {
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no /usr/bin/python3 with torch (Debian: apt-get install python3-torch)";
  }
  ScratchDir dir;
  const std::string script = dir.file("make.py");
  std::ofstream(script) << R"(import sys, torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
torch.save(m.state_dict(), sys.argv[1] + '/module.pth')
torch.save({'p': torch.nn.Parameter(torch.arange(5.0)), 'h': torch.arange(4.0).half()}, sys.argv[1] + '/p4.pth',
           pickle_protocol=4)
with open(sys.argv[1] + '/module.txt', 'w') as f:
    for k, v in m.state_dict().items():
        f.write(k + ' ' + ' '.join(repr(float(x)) for x in v.flatten()) + '\n')
)";
  ASSERT_EQ(std::system(("/usr/bin/python3 " + script + " " + dir.file("")).c_str()), 0);
  const NamedTensors module = read_pth_tensors(dir.file("module.pth"));
  std::ifstream expected(dir.file("module.txt"));
  size_t i = 0;
  for (std::string line; std::getline(expected, line); ++i) {
    std::istringstream in(line);
    std::string name;
    in >> name;
    ASSERT_LT(i, module.size());
    EXPECT_EQ(module[i].first, name);
    std::vector<float> values;
    for (double v; in >> v;) values.push_back(static_cast<float>(v));
    EXPECT_EQ(module[i].second.to_vector<float>(), values) << name;
  }
  EXPECT_EQ(i, module.size());
  const NamedTensors p4 = read_pth_tensors(dir.file("p4.pth"));
  ASSERT_EQ(p4.size(), 2u);
  EXPECT_EQ(p4[0].first, "p");
  EXPECT_EQ(p4[0].second.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(p4[1].second.to_vector<float>(), (std::vector<float>{0, 1, 2, 3}));
}

// ---------------------------------------------------------------------------------------------------------
// conversions and names

TEST(PthIo, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(65519.99f), 0x7BFF);
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);  // the tie rounds to even: infinity
  EXPECT_EQ(float_to_half(1e9f), 0x7C00);
  EXPECT_EQ(float_to_half(-INFINITY), 0xFC00);
  EXPECT_EQ(float_to_half(0x1p-24f), 0x0001);
  EXPECT_EQ(float_to_half(0x1p-25f), 0x0000);          // tie between 0 and the smallest subnormal: even
  EXPECT_EQ(float_to_half(0x1.8p-24f), 0x0002);        // tie between 1 and 2 ulps: even
  EXPECT_EQ(float_to_half(1.0f + 0x1p-11f), 0x3C00);   // tie: even
  EXPECT_EQ(float_to_half(1.0f + 0x1.8p-10f), 0x3C02);  // tie between 0x3C01 and 0x3C02: even
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  // Every half value survives half -> float -> half.
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), h) << "half 0x" << std::hex << h;
  }
  EXPECT_EQ(half_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
}

ModelConfig tiny_dims() {
  ModelConfig dims;
  dims.n_layer = 2;
  dims.n_embd = 8;
  dims.dim_att = 16;
  dims.dim_ffn = 24;
  dims.vocab_size = 11;
  dims.ctx_len = 32;
  return dims;
}

TEST(PthIo, ParameterNamesMatchTheModel) {
  const ModelConfig dims = tiny_dims();
  const auto shapes = rwkv4_parameter_shapes(dims);
  const Rwkv4 model(dims);
  const auto params = model.named_parameters();
  ASSERT_EQ(shapes.size(), params.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    EXPECT_EQ(shapes[i].first, params[i].first);
    EXPECT_EQ(shapes[i].second, params[i].second.data().shape()) << shapes[i].first;
  }
}

NamedTensors random_weights(const ModelConfig& dims) {
  NamedTensors weights;
  uint64_t seed = 1;
  for (const auto& [name, shape] : rwkv4_parameter_shapes(dims)) {
    weights.emplace_back(name, testing::random_tensor(shape, seed++, DType::f32, -70000.0f, 70000.0f));
  }
  // Small values too, so fp16 subnormals and bf16 rounding are exercised.
  weights[1].second = testing::random_tensor(weights[1].second.shape(), 99, DType::f32, -1e-6f, 1e-6f);
  return weights;
}

TEST(PthIo, ExportImportRoundTripsInEveryDtype) {
  ScratchDir dir;
  const ModelConfig dims = tiny_dims();
  const NamedTensors weights = random_weights(dims);
  write_model_weights(dir.file("m.h5"), dims, weights);

  for (PthDType dtype : {PthDType::f32, PthDType::bf16, PthDType::f16}) {
    for (bool zip64 : {false, true}) {
      SCOPED_TRACE(std::string(pth_dtype_name(dtype)) + (zip64 ? " zip64" : ""));
      const std::string pth = dir.file(std::string("m_") + pth_dtype_name(dtype) + (zip64 ? "_64" : "") + ".pth");
      pth::ZipWriterOptions options;
      if (zip64) options.zip64_threshold = 0;
      const PthExportResult exported = export_pth(dir.file("m.h5"), pth, dtype, options);
      EXPECT_EQ(exported.tensors, weights.size());
      EXPECT_EQ(exported.file_bytes, std::filesystem::file_size(pth));
      const PthModel imported = read_pth_model(pth, 77);
      ModelConfig expected_dims = dims;
      expected_dims.ctx_len = 77;
      EXPECT_EQ(imported.dims, expected_dims);
      ASSERT_EQ(imported.tensors.size(), weights.size());
      for (size_t i = 0; i < weights.size(); ++i) {
        EXPECT_EQ(imported.tensors[i].first, weights[i].first);
        const std::vector<float> original = weights[i].second.to_vector<float>();
        std::vector<float> rounded = original;
        for (float& v : rounded) {
          if (dtype == PthDType::bf16) v = bf16_to_float(float_to_bf16(v));
          if (dtype == PthDType::f16) v = half_to_float(float_to_half(v));
        }
        ASSERT_EQ(imported.tensors[i].second.to_vector<float>(), rounded) << weights[i].first;
      }
    }
  }
  // fp32: export -> import -> export gives the same bytes.
  const PthModel imported = read_pth_model(dir.file("m_fp32.pth"), dims.ctx_len);
  write_model_weights(dir.file("back.h5"), imported.dims, imported.tensors);
  export_pth(dir.file("back.h5"), dir.file("again.pth"), PthDType::f32);
  EXPECT_EQ(read_bytes(dir.file("m_fp32.pth")), read_bytes(dir.file("again.pth")));
}

TEST(PthIo, ExportRefusesAWrongModelGroupAndLeavesNoFile) {
  ScratchDir dir;
  const ModelConfig dims = tiny_dims();
  NamedTensors weights = random_weights(dims);
  weights.erase(weights.begin() + 3);
  weights.push_back({"extra.weight", Tensor::zeros({2})});
  write_model_weights(dir.file("bad.h5"), dims, weights);
  expect_error([&] { export_pth(dir.file("bad.h5"), dir.file("bad.pth"), PthDType::bf16); },
               {"bad.h5", "(2 problems)", "/model/blocks.0.ln2.weight: missing", "/model/extra.weight: unexpected"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.pth")));
  EXPECT_EQ(dir.file_count(), 1u);
}

// A hand-made archive: the given records over storages of float32 elements 0, 1, 2, ...
void write_archive(const std::string& path, const std::vector<pth::TensorRecord>& records,
                   const std::vector<std::pair<std::string, size_t>>& storages) {
  pth::ZipWriter zip(path, {});
  zip.add("archive/data.pkl", pth::write_state_dict_pickle(records));
  for (const auto& [key, count] : storages) {
    std::vector<float> values(count);
    for (size_t i = 0; i < count; ++i) values[i] = static_cast<float>(i);
    zip.add("archive/data/" + key, std::span(reinterpret_cast<const uint8_t*>(values.data()), count * 4));
  }
  zip.add("archive/version", as_bytes("3\n"));
  zip.finish();
}

TEST(PthIo, StridesOffsetsAndSharedStorages) {
  ScratchDir dir;
  const std::string path = dir.file("views.pth");
  write_archive(path,
                {record("t", "FloatStorage", "0", 12, 1, {3, 2}, {1, 3}),  // transposed, offset 1
                 record("s", "FloatStorage", "0", 12, 6, {2, 3}, {3, 1}),  // the same storage, later
                 record("b", "FloatStorage", "0", 12, 2, {2, 2}, {0, 1}),  // broadcast row
                 record("e", "FloatStorage", "0", 12, 12, {0, 5}, {5, 1})},  // empty at the very end
                {{"0", 12}});
  const NamedTensors tensors = read_pth_tensors(path);
  ASSERT_EQ(tensors.size(), 4u);
  EXPECT_EQ(tensors[0].second.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(tensors[1].second.to_vector<float>(), (std::vector<float>{6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(tensors[2].second.to_vector<float>(), (std::vector<float>{2, 3, 2, 3}));
  EXPECT_EQ(tensors[3].second.numel(), 0);
}

TEST(PthIo, BadStateDicts) {
  ScratchDir dir;
  const std::string path = dir.file("bad.pth");
  write_archive(path, {record("w", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1})}, {});
  expect_error([&] { read_pth_tensors(path); },
               {path, "tensor 'w'", "storage record archive/data/0 is missing"});
  write_archive(path, {record("w", "LongStorage", "0", 6, 0, {2, 3}, {3, 1})}, {{"0", 12}});
  expect_error([&] { read_pth_tensors(path); }, {"tensor 'w'", "storage type torch.LongStorage is not supported"});
  write_archive(path, {record("w", "FloatStorage", "0", 6, 1, {2, 3}, {3, 1})}, {{"0", 6}});
  expect_error([&] { read_pth_tensors(path); }, {"tensor 'w'", "reaches element 6, outside its storage of 6"});
  write_archive(path, {record("w", "FloatStorage", "0", 6, 0, {3, 2}, {2, 3})}, {{"0", 6}});
  expect_error([&] { read_pth_tensors(path); }, {"reaches element 7"});
  write_archive(path, {record("w", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1})}, {{"0", 5}});
  expect_error([&] { read_pth_tensors(path); }, {"holds 20 bytes, fewer than its 6 elements of 4 bytes"});
  write_archive(path, {record("w", "FloatStorage", "0", 6, 0, {2, 3}, {-3, 1})}, {{"0", 6}});
  expect_error([&] { read_pth_tensors(path); }, {"negative size, stride or offset"});

  // Not torch's format at all, or its legacy one.
  {
    pth::ZipWriter zip(path, {});
    zip.add("hello.txt", as_bytes("hi"));
    zip.finish();
  }
  expect_error([&] { read_pth_tensors(path); }, {"without <archive>/data.pkl"});
  write_bytes(path, bytes_of(std::string("\x80\x02\x8a\x0a" "l\xfc\x9c" "F\xf9 j\xa8P\x19.", 15)));
  expect_error([&] { read_pth_tensors(path); }, {path, "legacy (pre-1.6, non-zip) serialization format", "torch.save"});
}

TEST(PthIo, ImportChecksNamesAndShapes) {
  ScratchDir dir;
  const ModelConfig dims = tiny_dims();
  NamedTensors weights = random_weights(dims);
  // Drop two tensors, give one a wrong shape, add one the model does not have.
  weights.erase(weights.begin() + 5);
  weights.pop_back();
  weights[2].second = Tensor::zeros({7});
  weights.push_back({"blocks.0.att.extra", Tensor::zeros({2})});
  std::vector<pth::TensorRecord> records;
  std::vector<std::pair<std::string, size_t>> storages;
  for (size_t i = 0; i < weights.size(); ++i) {
    const Shape& shape = weights[i].second.shape();
    Shape stride(shape.size(), 1);
    for (size_t k = shape.size(); k-- > 1;) stride[k - 1] = stride[k] * shape[k];
    records.push_back(record(weights[i].first, "FloatStorage", std::to_string(i), weights[i].second.numel(), 0,
                             shape, stride));
    storages.emplace_back(std::to_string(i), static_cast<size_t>(weights[i].second.numel()));
  }
  write_archive(dir.file("m.pth"), records, storages);
  expect_error(
      [&] { read_pth_model(dir.file("m.pth"), 1024); },
      {"m.pth", "(4 problems)", "blocks.0.ln1.bias: shape [7], expected [8]", "blocks.0.ln0.weight: missing",
       "head.weight: missing", "blocks.0.att.extra: unexpected tensor"});

  write_archive(dir.file("none.pth"), {record("x", "FloatStorage", "0", 1, 0, {1}, {1})}, {{"0", 1}});
  expect_error([&] { read_pth_model(dir.file("none.pth"), 1024); }, {"no 2-D emb.weight tensor"});
}

}  // namespace
}  // namespace rwkv
