// Fuzzes the .npy reader (data/npy.cpp): the header parser on the exact input bytes in memory (so ASan sees any
// over-read), then the whole file path: open, map and read every token.
#include <cstdint>
#include <vector>

#include "data/npy.h"
#include "data/token_source.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  bool header_ok = false;
  fuzz::expect_clean_errors(
      [&] {
        const data::NpyHeader header = data::parse_npy_header(bytes, size, "fuzz.npy");
        fuzz::require(header.data_offset <= size, "data offset inside the file");
        fuzz::require(header.length * data::itemsize(header.dtype) == size - header.data_offset,
                      "length times itemsize equals the bytes after the header");
        header_ok = true;
      },
      "fuzz.npy");
  if (!header_ok) return 0;
  const std::string path = fuzz::write_scratch_file("tokens.npy", data, size);
  fuzz::expect_clean_errors(
      [&] {
        const data::TokenSource source("numpy", {data::open_npy_shard(path)});
        std::vector<std::int32_t> tokens(source.size());
        source.read(0, source.size(), tokens.data());  // may throw for ids that do not fit int32
      },
      path);
  return 0;
}
