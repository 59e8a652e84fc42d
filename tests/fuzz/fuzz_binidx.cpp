// Fuzzes the binidx reader (data/binidx.cpp): the input is a 4-byte little-endian .bin length followed by the
// .idx bytes; the .bin is that many bytes (capped at 4 KiB). A shard that opens must read back in full.
#include <cstdint>
#include <cstring>
#include <vector>

#include "data/binidx.h"
#include "data/token_source.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  if (size < 4) return 0;
  std::uint32_t bin_bytes = 0;
  std::memcpy(&bin_bytes, data, 4);
  bin_bytes %= 4096 + 1;
  const std::string prefix = fuzz::scratch_dir() + "/shard";
  fuzz::write_scratch_file("shard.idx", data + 4, size - 4);
  std::vector<std::uint8_t> bin(bin_bytes);
  for (std::size_t i = 0; i < bin.size(); ++i) bin[i] = static_cast<std::uint8_t>(i * 7 + (i >> 8));
  fuzz::write_scratch_file("shard.bin", bin.data(), bin.size());

  fuzz::expect_clean_errors(
      [&] {
        data::TokenShard shard = data::open_binidx_shard(prefix);
        fuzz::require(shard.size * data::itemsize(shard.dtype) == bin_bytes, "shard size matches the .bin length");
        const data::TokenSource source("binidx", {shard});
        std::vector<std::int32_t> tokens(source.size());
        source.read(0, source.size(), tokens.data());  // may throw for ids that do not fit int32
      },
      prefix);
  return 0;
}
