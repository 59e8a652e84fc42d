// Crash-safe files: a whole-file replace that is either the old or the new file, an append-only log.
#include "core/durable_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/error.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

class DurableFile : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rwkv_durable_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static ino_t inode(const fs::path& path) {
    struct stat info {};
    EXPECT_EQ(::stat(path.c_str(), &info), 0);
    return info.st_ino;
  }
  fs::path dir_;
};

TEST_F(DurableFile, ReplaceWritesANewFileAndLeavesNoTemporary) {
  const fs::path path = dir_ / "run.json";
  replace_file_atomically(path.string(), "first");
  EXPECT_EQ(read(path), "first");
  const ino_t before = inode(path);
  replace_file_atomically(path.string(), "second, longer");
  EXPECT_EQ(read(path), "second, longer");
  // A new file renamed over the old one, never the old one truncated and rewritten in place.
  EXPECT_NE(inode(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(DurableFile, AFailedReplaceLeavesTheOldFileAndNoTemporary) {
  const fs::path path = dir_ / "taken";
  fs::create_directories(path / "inside");  // a non-empty directory cannot be renamed over
  try {
    replace_file_atomically(path.string(), "text");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(path / "inside"));
  EXPECT_FALSE(fs::exists(temporary_path_for(path.string())));
  EXPECT_THROW(replace_file_atomically((dir_ / "missing" / "x").string(), "text"), Error);
}

TEST_F(DurableFile, TemporaryNamesCarryThePid) {
  EXPECT_EQ(temporary_path_for("a/b.h5"), "a/b.h5.tmp-" + std::to_string(::getpid()));
}

TEST_F(DurableFile, AppendOnlyFileAppendsWholeRecordsToWhatIsThere) {
  const fs::path path = dir_ / "metrics.jsonl";
  std::ofstream(path) << "{\"step\": 1}\n";
  const ino_t before = inode(path);
  {
    AppendOnlyFile log(path.string());
    log.append("{\"step\": 2}\n");
    log.sync();
    AppendOnlyFile moved = std::move(log);
    moved.append("{\"step\": 3}\n");
    EXPECT_EQ(moved.path(), path.string());
  }
  EXPECT_EQ(read(path), "{\"step\": 1}\n{\"step\": 2}\n{\"step\": 3}\n");
  EXPECT_EQ(inode(path), before);
  EXPECT_THROW(AppendOnlyFile((dir_ / "missing" / "log").string()), Error);
}

}  // namespace
}  // namespace rwkv
