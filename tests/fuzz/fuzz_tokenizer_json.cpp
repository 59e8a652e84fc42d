// Fuzzes the tokenizer.json loader (data/tokenizer.cpp, data/json.cpp): any input must load or throw an
// rwkv::Error naming the source; a tokenizer that loads must then encode and decode without crashing.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/tokenizer.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  const std::string_view json_text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean_errors([&] {
    const data::Tokenizer tokenizer = data::Tokenizer::from_json(json_text, "fuzz.json");
    const std::int32_t vocab = tokenizer.vocab_size();
    fuzz::require(vocab >= 0, "vocab_size is not negative");
    for (std::int32_t id = 0; id < std::min<std::int32_t>(vocab, 2048); ++id) {
      fuzz::require(tokenizer.token_to_id(tokenizer.id_to_token(id)).has_value(), "every id's token has an id");
    }
    std::string text = "Hello world, the quick brown fox\n\n  caf\xC3\xA9 e\xCC\x81 12345 \xE2\x82\xAC!";
    for (const auto& added : tokenizer.added_tokens()) text += added.content + " x";
    // Encoding may throw for a vocabulary that lacks a byte (the file is valid JSON but an unusable tokenizer).
    fuzz::expect_clean_errors([&] {
      const auto ids = tokenizer.encode(text);
      for (const std::int32_t id : ids) fuzz::require(id >= 0 && id < vocab, "encoded ids are in the vocabulary");
      tokenizer.decode(ids);
      tokenizer.decode(ids, /*skip_special_tokens=*/true);
    });
  }, "fuzz.json");
  return 0;
}
