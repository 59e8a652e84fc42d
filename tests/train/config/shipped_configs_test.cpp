// Every config shipped in configs/ parses, validates, and describes the model it says it does.
#include <gtest/gtest.h>

#include <filesystem>

#include "train/config/config.h"
#include "train/optim/schedule.h"

namespace rwkv {
namespace {

TEST(TrainShippedConfigs, AllParseAndThePileModelsHaveTheirSizes) {
  const std::filesystem::path dir = std::filesystem::path(RWKV_SOURCE_DIR) / "configs";
  int parsed_count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".ini") continue;
    SCOPED_TRACE(entry.path().string());
    const ParsedConfig parsed = parse_train_config({"--config", entry.path().string()});
    ++parsed_count;
    if (parsed.config.magic_prime != 0) {
      const ScheduleShape shape = schedule_shape(parsed.config, 8);  // 8 GPUs: 96 sequences per step
      EXPECT_EQ(shape.epoch_steps, 420);
      EXPECT_EQ(shape.epoch_count, 8043);
    }
  }
  EXPECT_GE(parsed_count, 6);
  auto params = [&](const char* name) {
    return parse_train_config({"--config", (dir / name).string()}).config.model().parameter_count();
  };
  EXPECT_EQ(params("pile-169m.ini"), 169342464);
  EXPECT_EQ(params("pile-430m.ini"), 430397440);
  EXPECT_EQ(params("pile-1b5.ini"), 1515106304);
  EXPECT_EQ(params("pile-3b.ini"), 2984627200);
  EXPECT_EQ(parse_train_config({"--config", (dir / "pile-3b.ini").string()}).config.lr_init, 2e-4);
}

}  // namespace
}  // namespace rwkv
