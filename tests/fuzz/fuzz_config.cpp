// Fuzzes the training-config parser (train/config/config.cpp): the input is INI text, read both as a resolved config
// (config_from_ini, as on resume) and as a --config file (parse_train_config). Bad text may only throw an
// rwkv::Error; a config that reads back must survive its own to_ini() dump unchanged.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "train/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean_errors(
      [&] {
        const TrainConfig config = config_from_ini(text, "fuzz.ini");
        const std::string dump = config.to_ini();
        fuzz::require(config_from_ini(dump, "dump").to_ini() == dump, "config_from_ini(to_ini()) is the identity");
        fuzz::expect_clean_errors([&] { config.validate(); });
      },
      "fuzz.ini");
  const std::string path = fuzz::write_scratch_file("fuzz.ini", text);
  fuzz::expect_clean_errors([&] { parse_train_config({"--config", path}); });
  return 0;
}
