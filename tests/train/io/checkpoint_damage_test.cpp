// Checkpoint files against damage and crashes: the seal (train/io/file_seal.h) catches truncation and any changed
// byte before HDF5 parses the file; unsealed files still open; a save that cannot be written leaves nothing;
// temporaries of killed writers are cleaned up by the next save.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "core/error.h"
#include "train/io/checkpoint.h"
#include "train/config/config.h"
#include "train/io/file_seal.h"
#include "train/io/hdf5.h"
#include "train/model/model_init.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

using testing::error_of;

class TrainCheckpointDamage : public testing::TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ModelConfig mc;
    mc.vocab_size = 32;
    mc.n_layer = 2;
    mc.n_embd = 8;
    mc.ctx_len = 8;
    model_ = std::make_unique<Rwkv4>(mc);
    initialize_rwkv4(*model_, 1e-3, 7);
    optimizer_ = std::make_unique<Optimizer>(model_->named_parameters(), TrainConfig{});
    state_.global_step = 5;
    good_ = (dir_ / "rwkv-step-5.h5").string();
    save_checkpoint(good_, *model_, *optimizer_, state_);
  }

  std::unique_ptr<Rwkv4> model_;
  std::unique_ptr<Optimizer> optimizer_;
  TrainState state_;
  std::string good_;
};

TEST_F(TrainCheckpointDamage, SavedCheckpointsAreSealedAndRead) {
  const std::string bytes = read_bytes(good_);
  ASSERT_GT(bytes.size(), kSealBytes);
  EXPECT_EQ(bytes.substr(0, 8), "RWKVSEAL");
  EXPECT_EQ(bytes.substr(kSealBytes, 8), "\x89HDF\r\n\x1a\n");  // the HDF5 file proper follows the user block
  EXPECT_NO_THROW(check_seal(good_));
  EXPECT_EQ(read_train_state(good_).global_step, 5);
}

TEST_F(TrainCheckpointDamage, AnyChangedByteIsReportedBeforeHdf5ReadsIt) {
  const std::string bytes = read_bytes(good_);
  const fs::path bad = dir_ / "rwkv-step-6.h5";
  // Positions in the HDF5 superblock, in metadata and in tensor data, and the last byte.
  for (size_t position : {kSealBytes, kSealBytes + 9, size_t{2000}, bytes.size() / 2, bytes.size() - 1}) {
    std::string damaged = bytes;
    damaged[position] = static_cast<char>(damaged[position] ^ 0x10);
    write_bytes(bad, damaged);
    const std::string message = error_of([&] { read_train_state(bad.string()); });
    EXPECT_NE(message.find(bad.string() + ": damaged: the checksum"), std::string::npos)
        << "byte " << position << ": " << message;
  }
  // The seal's own fields.
  for (size_t position : {size_t{8}, size_t{16}, size_t{24}}) {
    std::string damaged = bytes;
    damaged[position] = static_cast<char>(damaged[position] ^ 0x01);
    write_bytes(bad, damaged);
    EXPECT_NE(error_of([&] { read_train_state(bad.string()); }).find("damaged"), std::string::npos) << position;
  }
}

TEST_F(TrainCheckpointDamage, TruncatedOrExtendedFilesNameBothLengths) {
  const std::string bytes = read_bytes(good_);
  const fs::path bad = dir_ / "bad.h5";
  write_bytes(bad, bytes.substr(0, bytes.size() - 100));
  const std::string truncated = error_of([&] { hdf5::File::open_read(bad.string()); });
  EXPECT_NE(truncated.find("damaged: truncated"), std::string::npos) << truncated;
  EXPECT_NE(truncated.find(std::to_string(bytes.size())), std::string::npos) << truncated;
  write_bytes(bad, bytes + "x");
  EXPECT_NE(error_of([&] { hdf5::File::open_read(bad.string()); }).find("longer than written"), std::string::npos);
}

TEST_F(TrainCheckpointDamage, UnsealedFilesOpenAsBefore) {
  std::string bytes = read_bytes(good_);
  bytes.replace(0, 8, std::string(8, '\0'));  // as another tool's file with a user block
  const fs::path other = dir_ / "other.h5";
  write_bytes(other, bytes);
  EXPECT_NO_THROW(check_seal(other.string()));
  EXPECT_EQ(read_train_state(other.string()).global_step, 5);
}

TEST_F(TrainCheckpointDamage, AVerifiedFileIsCheckedAgainAfterItChanges) {
  EXPECT_NO_THROW(check_seal(good_));  // remembered as verified
  std::string bytes = read_bytes(good_);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
  ::usleep(20000);  // a later modification time
  write_bytes(good_, bytes);
  EXPECT_NE(error_of([&] { check_seal(good_); }).find("damaged"), std::string::npos);
}

TEST_F(TrainCheckpointDamage, ListingSkipsDamagedFilesAndNamesThem) {
  std::string bytes = read_bytes(good_);
  bytes[bytes.size() / 3] = static_cast<char>(bytes[bytes.size() / 3] ^ 4);
  write_bytes(dir_ / "rwkv-step-9.h5", bytes);
  std::vector<std::string> problems;
  const std::vector<CheckpointEntry> entries = list_checkpoints(dir_.string(), &problems);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, good_);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("rwkv-step-9.h5: damaged"), std::string::npos) << problems[0];
}

TEST_F(TrainCheckpointDamage, AFailedSaveLeavesNoFileAndNamesTheCheckpoint) {
  const std::string target = (dir_ / "missing-dir" / "rwkv-step-6.h5").string();
  const std::string message = error_of([&] { save_checkpoint(target, *model_, *optimizer_, state_); });
  EXPECT_NE(message.find("checkpoint: cannot save '" + target + "'"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(TrainCheckpointDamage, AFullDiskIsAnErrorAndTheProcessStillExitsCleanly) {
  // In a child: files may not grow past 64 KiB (write() fails with EFBIG, as on a full disk). The save must
  // throw naming the checkpoint, and the process must then exit normally: HDF5's clean-up at exit used to
  // crash on the file whose write had failed.
  const std::string target = (dir_ / "rwkv-step-6.h5").string();
  const fs::path message_file = dir_ / "message.txt";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{64 << 10, 64 << 10};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    ModelConfig mc;
    mc.vocab_size = 4096;  // about 1 MiB of weights
    mc.n_layer = 2;
    mc.n_embd = 64;
    mc.ctx_len = 8;
    Rwkv4 big(mc);
    Optimizer optimizer(big.named_parameters(), TrainConfig{});
    write_bytes(message_file, error_of([&] { save_checkpoint(target, big, optimizer, TrainState{}); }));
    std::exit(7);  // runs the exit handlers
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 7);
  const std::string message = read_bytes(message_file);
  EXPECT_NE(message.find("checkpoint: cannot save '" + target + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(target));
  for (const auto& item : fs::directory_iterator(dir_)) {
    EXPECT_EQ(item.path().filename().string().find(".tmp-"), std::string::npos) << item.path();
  }
}

TEST_F(TrainCheckpointDamage, TheNextSaveRemovesTemporariesOfDeadWriters) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // a writer that is gone
  const fs::path dead = dir_ / ("rwkv-step-4.h5.tmp-" + std::to_string(child));
  const fs::path alive = dir_ / ("rwkv-step-4.h5.tmp-" + std::to_string(::getppid()));  // a writer still running
  const fs::path unrelated = dir_ / ("notes.tmp-" + std::to_string(child));  // not ours, though its pid is gone
  for (const fs::path& path : {dead, alive, unrelated}) write_bytes(path, "partial");
  save_checkpoint((dir_ / "rwkv-step-6.h5").string(), *model_, *optimizer_, state_);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(unrelated));
}

}  // namespace
}  // namespace rwkv
