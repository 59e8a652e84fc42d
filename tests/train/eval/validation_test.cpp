// Validation during training: held-out loss at val_every steps and at the end, logged to metrics.jsonl; it must
// not change training by a single bit, must equal `rwkv eval`'s evaluation of the same weights, must survive a
// resume, and bad validation data must be an error before training starts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "data/dataset.h"
#include "train/io/checkpoint.h"
#include "train/eval/evaluate.h"
#include "train/io/hdf5.h"
#include "train/io/model_io.h"
#include "train/trainer.h"
#include "train/eval/validation.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

class TrainValidation : public testing::TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    testing::write_fox_corpus(dir_ / "train.txt");
    std::ofstream held_out(dir_ / "val.txt");  // 40 windows of 33 bytes and a bit
    for (int i = 0; i < 40; ++i) held_out << "a lazy dog " << i % 5 << " naps by the brown fox.\n";
  }

  TrainConfig small_config(const std::string& run) const {
    TrainConfig c = testing::tiny_training_config(dir_ / "train.txt", dir_ / run);
    c.epoch_count = 2;
    c.epoch_save = 0;
    return c;
  }
  TrainConfig with_validation(TrainConfig c) const {
    c.val_data_file = (dir_ / "val.txt").string();
    c.val_data_type = "bytes";
    c.val_every = 3;
    return c;
  }

  static std::vector<float> model_values(const std::string& checkpoint) {
    const hdf5::File file = hdf5::File::open_read(checkpoint);
    std::vector<float> values;
    const hdf5::Group g = file.open_group("model");
    for (const std::string& name : g.members()) {
      if (!g.contains_dataset(name)) continue;
      const auto v = g.read_tensor(name, DType::f32).to_vector<float>();
      values.insert(values.end(), v.begin(), v.end());
    }
    return values;
  }

  static std::vector<std::string> lines_of(const fs::path& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  // The steps of metrics.jsonl's validation records, in file order.
  static std::vector<int64_t> validation_steps(const fs::path& metrics) {
    std::vector<int64_t> steps;
    for (const std::string& line : lines_of(metrics)) {
      long long step = 0;
      const bool validation = line.find("\"val_loss\"") != std::string::npos;
      if (validation && std::sscanf(line.c_str(), "{\"step\": %lld", &step) == 1) {
        steps.push_back(step);
      }
    }
    return steps;
  }

  void write_npy_u16(const fs::path& path, const std::vector<uint16_t>& tokens) const {
    std::string header = "{'descr': '<u2', 'fortran_order': False, 'shape': (" + std::to_string(tokens.size()) + ",), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream out(path, std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    const auto length = static_cast<uint16_t>(header.size());
    out.put(static_cast<char>(length & 0xff)).put(static_cast<char>(length >> 8));
    out << header;
    for (uint16_t token : tokens) out.put(static_cast<char>(token & 0xff)).put(static_cast<char>(token >> 8));
  }

  // The error run_training throws for `config`, with proj_dir checked to hold no training output.
  std::string training_error(const TrainConfig& config) const {
    try {
      run_training(config, quiet_);
    } catch (const Error& e) {
      EXPECT_FALSE(fs::exists(fs::path(config.proj_dir) / "metrics.jsonl")) << "training started: " << e.what();
      EXPECT_TRUE(list_checkpoints(config.proj_dir, nullptr).empty());
      return e.what();
    }
    ADD_FAILURE() << "no error for val_data_file " << config.val_data_file;
    return "";
  }

  TrainerHooks quiet_{nullptr, true};
};

TEST_F(TrainValidation, DoesNotChangeTrainingByASingleBit) {
  const TrainOutcome plain = run_training(small_config("plain"), quiet_);
  const TrainOutcome validated = run_training(with_validation(small_config("validated")), quiet_);
  ASSERT_EQ(plain.records.size(), 8u);
  ASSERT_EQ(validated.records.size(), plain.records.size());
  for (size_t i = 0; i < plain.records.size(); ++i) {
    EXPECT_EQ(plain.records[i].loss, validated.records[i].loss) << "step " << i + 1;  // exact, not near
    EXPECT_EQ(plain.records[i].grad_norm, validated.records[i].grad_norm) << "step " << i + 1;
  }
  EXPECT_EQ(model_values(plain.last_checkpoint), model_values(validated.last_checkpoint));
  EXPECT_TRUE(plain.validations.empty());
  // val_every 3 over 8 steps: 3, 6, and the end.
  ASSERT_EQ(validated.validations.size(), 3u);
  EXPECT_EQ(validated.validations[0].step, 3);
  EXPECT_EQ(validated.validations[1].step, 6);
  EXPECT_EQ(validated.validations[2].step, 8);
  EXPECT_LT(validated.validations[2].loss, validated.validations[0].loss);  // it learns
  EXPECT_EQ(validation_steps(dir_ / "validated" / "metrics.jsonl"), (std::vector<int64_t>{3, 6, 8}));
  // The loss curve has the second series.
  std::ifstream svg(dir_ / "validated" / "loss.svg");
  const std::string curve((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(curve.find("#ff7f0e"), std::string::npos);
  EXPECT_NE(curve.find(">validation</text>"), std::string::npos);
}

TEST_F(TrainValidation, EqualsTheHeldOutEvaluationOfTheSavedWeights) {
  TrainConfig config = with_validation(small_config("run"));
  config.val_every = 0;  // only at the end
  config.val_max_windows = 7;  // and only the first 7 windows
  const TrainOutcome outcome = run_training(config, quiet_);
  ASSERT_EQ(outcome.validations.size(), 1u);
  const ValidationRecord& record = outcome.validations[0];
  EXPECT_EQ(record.step, 8);
  EXPECT_EQ(record.tokens, 7 * 32);

  const data::TokenSource all = data::open_dataset({config.val_data_file, "bytes", ""});
  std::unique_ptr<Rwkv4> saved = load_model(outcome.last_checkpoint);
  const EvalResult expected = evaluate(*saved, token_range(all, 0, 7 * 33), 32, config.micro_bsz, Device::cpu());
  EXPECT_EQ(expected.windows, 7);
  EXPECT_EQ(record.loss, expected.loss);  // the same evaluation on the same weights
  EXPECT_DOUBLE_EQ(record.perplexity, std::exp(expected.loss));
  // And the record in metrics.jsonl.
  const std::vector<std::string> lines = lines_of(dir_ / "run" / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 9u);
  double logged = 0;
  ASSERT_EQ(std::sscanf(lines.back().c_str(), "{\"step\": 8, \"val_loss\": %lf", &logged), 1) << lines.back();
  EXPECT_NEAR(logged, expected.loss, 1e-8);
  EXPECT_NE(lines.back().find("\"val_tokens\": 224"), std::string::npos);
}

TEST_F(TrainValidation, AResumeKeepsTheValidationRecordsUpToItsStep) {
  TrainConfig config = with_validation(small_config("run"));
  config.val_every = 2;
  config.max_steps = 5;
  config.save_every_steps = 3;
  run_training(config, quiet_);  // validations at 2, 4 and 5; checkpoints at 3 and 5
  EXPECT_EQ(validation_steps(dir_ / "run" / "metrics.jsonl"), (std::vector<int64_t>{2, 4, 5}));
  config.resume = (dir_ / "run" / "rwkv-step-3.h5").string();
  config.max_steps = 0;  // to the end of the schedule: step 8
  const TrainOutcome resumed = run_training(config, quiet_);
  ASSERT_EQ(resumed.validations.size(), 3u);
  // Step 2's record is kept; 4 and 5 were redone by the resumed run, which validates at 4, 6 and 8.
  EXPECT_EQ(validation_steps(dir_ / "run" / "metrics.jsonl"), (std::vector<int64_t>{2, 4, 6, 8}));
  int training_records = 0;
  for (const std::string& line : lines_of(dir_ / "run" / "metrics.jsonl")) {
    training_records += line.find("\"loss\"") != std::string::npos && line.find("val_loss") == std::string::npos;
  }
  EXPECT_EQ(training_records, 8);
}

TEST_F(TrainValidation, BadValidationDataIsAnErrorBeforeTrainingStarts) {
  TrainConfig config = with_validation(small_config("missing"));
  config.val_data_file = (dir_ / "nope.txt").string();
  std::string error = training_error(config);
  EXPECT_NE(error.find("val_data_file"), std::string::npos) << error;
  EXPECT_NE(error.find("nope.txt"), std::string::npos) << error;

  std::ofstream(dir_ / "short.txt") << "too short: 32 bytes, not 33 ....";
  config = with_validation(small_config("short"));
  config.val_data_file = (dir_ / "short.txt").string();
  error = training_error(config);
  EXPECT_NE(error.find("val_data_file"), std::string::npos) << error;
  EXPECT_NE(error.find("fewer than one window of ctx_len + 1 = 33"), std::string::npos) << error;

  std::vector<uint16_t> tokens(100, 65);
  tokens[70] = 300;  // beyond the 256 byte values the model is built for
  write_npy_u16(dir_ / "big_ids.npy", tokens);
  config = with_validation(small_config("vocab"));
  config.val_data_file = (dir_ / "big_ids.npy").string();
  config.val_data_type = "";  // numpy, from the name
  error = training_error(config);
  EXPECT_NE(error.find("val_data_file"), std::string::npos) << error;
  EXPECT_NE(error.find("big_ids.npy"), std::string::npos) << error;
  EXPECT_NE(error.find("300"), std::string::npos) << error;
}

TEST_F(TrainValidation, ConfigKeysAreCheckedAndNeedTheData) {
  const auto rejects = [](const std::vector<std::string>& args, const std::string& expected) {
    try {
      parse_train_config(args);
      ADD_FAILURE() << "accepted: " << expected;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  rejects({"--val_every", "-1"}, "val_every");
  rejects({"--val_data_file", "v.txt", "--val_max_windows", "-2"}, "val_max_windows");
  rejects({"--val_every", "10"}, "need val_data_file");
  rejects({"--val_data_file", "v.txt", "--val_data_type", "text"}, "val_data_type");
  rejects({"--val_evry", "10"}, "did you mean 'val_every'");
  const ParsedConfig parsed =
      parse_train_config({"--val_data_file", "v.bin", "--val_every", "100", "--val_max_windows", "50"});
  EXPECT_EQ(parsed.config.val_data_file, "v.bin");
  EXPECT_EQ(parsed.config.val_every, 100);
  EXPECT_EQ(parsed.config.val_max_windows, 50);
  EXPECT_EQ(config_from_ini(parsed.config.to_ini(), "test").val_every, 100);  // stored in checkpoints
}

TEST(TokenRange, IsAViewOfTheTokensAcrossShards) {
  const fs::path dir = fs::temp_directory_path() / ("rwkv_token_range_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "a.txt") << "abcdef";
  std::ofstream(dir / "b.txt") << "ghij";
  const data::TokenSource source =
      data::open_dataset({(dir / "a.txt").string() + "," + (dir / "b.txt").string(), "bytes", ""});
  const data::TokenSource middle = token_range(source, 4, 4);  // "efgh": across the two files
  ASSERT_EQ(middle.size(), 4u);
  std::vector<int32_t> tokens(4);
  middle.read(0, 4, tokens.data());
  EXPECT_EQ(tokens, (std::vector<int32_t>{'e', 'f', 'g', 'h'}));
  EXPECT_THROW(token_range(source, 8, 3), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
