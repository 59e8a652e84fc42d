// Fuzzes the BPE encoder (data/tokenizer*.cpp, data/unicode*.cpp): the input is text for the small byte-level BPE
// of tokenizer_fixture.json. Valid UTF-8 must encode to in-vocabulary ids that decode back to the normalised
// text, and encoding independent pieces must give the same ids; invalid UTF-8 must throw an rwkv::Error.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"
#include "fuzz_util.h"

#ifndef RWKV_FUZZ_DIR
#define RWKV_FUZZ_DIR "tests/fuzz"
#endif

namespace {
const rwkv::data::Tokenizer& fixture() {
  static const rwkv::data::Tokenizer tokenizer =
      rwkv::data::Tokenizer::from_file(RWKV_FUZZ_DIR "/tokenizer_fixture.json");
  return tokenizer;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fixture();  // load once, outside the measured runs
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  const data::Tokenizer& tokenizer = fixture();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::int32_t> ids;
  bool encoded = false;
  fuzz::expect_clean_errors([&] {
    ids = tokenizer.encode(text);
    encoded = true;
  });
  if (!encoded) return 0;
  for (const std::int32_t id : ids) {
    fuzz::require(id >= 0 && id < tokenizer.vocab_size(), "encoded ids are in the vocabulary");
  }
  // The fixture's added tokens are NFC-stable and strip nothing, so decoding gives back the normalised text.
  fuzz::require(tokenizer.decode(ids) == tokenizer.normalize(text), "decode(encode(text)) == normalize(text)");
  for (const std::size_t min_bytes : {std::size_t{1}, std::size_t{16}}) {
    std::vector<std::int32_t> joined;
    for (const std::string_view piece : tokenizer.independent_pieces(text, min_bytes)) tokenizer.encode(piece, joined);
    fuzz::require(joined == ids, "encoding independent_pieces gives the same ids");
  }
  return 0;
}
