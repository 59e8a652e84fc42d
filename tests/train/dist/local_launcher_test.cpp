// `rwkv train --gpus N`'s supervisor, with /bin/sh ranks: each rank's variables, a failing rank ending the
// others, and SIGTERM passed on to every rank. (The GPU run itself needs the GPU host.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "train/dist/local_launcher.h"

namespace rwkv::dist {
namespace {

namespace fs = std::filesystem;

class LocalLauncherTest : public ::testing::Test {
protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() /
                 ("rwkv-launcher-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  LocalLaunch shell(const std::string& script, int ranks) const {
    LocalLaunch launch;
    launch.argv = {"/bin/sh", "-c", script, "rank", directory_.string()};
    launch.ranks = ranks;
    launch.grace = std::chrono::milliseconds(2000);
    return launch;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(directory_ / name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path directory_;
};

TEST_F(LocalLauncherTest, EveryRankGetsItsTorchrunVariables) {
  ::setenv("RANK", "7", 1);  // an inherited value must not leak into the ranks
  LocalLaunch launch = shell(R"(echo "$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT" > "$1/$RANK")", 3);
  launch.master_port = 29517;
  EXPECT_EQ(run_local_ranks(launch), 0);
  ::unsetenv("RANK");
  for (int rank = 0; rank < 3; ++rank) {
    const std::string r = std::to_string(rank);
    EXPECT_EQ(read(r), r + " " + r + " 3 3 127.0.0.1 29517\n");
  }
}

TEST_F(LocalLauncherTest, AFailingRankStopsTheOthersAndGivesItsStatus) {
  // Rank 1 fails at once; rank 0 ignores SIGTERM (as a rank stuck in a collective would) and is killed after
  // the grace period; rank 2 stops on SIGTERM. (exec: the signals reach the sleeping process itself, so no
  // orphan keeps the test's output open.)
  const std::string script = R"(
    case "$RANK" in
      1) exit 3 ;;
      0) trap '' TERM; exec sleep 30 ;;
      *) exec sleep 30 ;;
    esac)";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(run_local_ranks(shell(script, 3)), 3);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 10.0) << "the survivors were not stopped";
}

TEST_F(LocalLauncherTest, AKilledRankCountsAsAFailure) {
  EXPECT_EQ(run_local_ranks(shell(R"([ "$RANK" = 0 ] && kill -KILL $$; exec sleep 30)", 2)), 128 + SIGKILL);
}

TEST_F(LocalLauncherTest, SigtermToTheLauncherReachesEveryRank) {
  // The launcher runs in a child process of the test, which sends it SIGTERM once every rank is up.
  const std::string script = R"(
    trap 'echo stopped > "$1/stopped-$RANK"; exit 0' TERM
    touch "$1/up-$RANK"
    while true; do sleep 0.05; done)";
  const LocalLaunch launch = shell(script, 2);
  const pid_t launcher = ::fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) ::_exit(run_local_ranks(launch));
  for (int i = 0; i < 200 && !(fs::exists(directory_ / "up-0") && fs::exists(directory_ / "up-1")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(directory_ / "up-0") && fs::exists(directory_ / "up-1")) << "the ranks never started";
  ::kill(launcher, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(launcher, &status, 0), launcher);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "every rank stopped cleanly, so the job succeeds";
  EXPECT_EQ(read("stopped-0"), "stopped\n");
  EXPECT_EQ(read("stopped-1"), "stopped\n");
}

TEST_F(LocalLauncherTest, AProgramThatCannotStartIsAClearError) {
  LocalLaunch launch;
  launch.argv = {(directory_ / "missing").string()};
  launch.ranks = 2;
  // posix_spawn reports a missing program either at once or as exit status 127 of the child.
  try {
    EXPECT_EQ(run_local_ranks(launch), 127);
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("cannot start rank"), std::string::npos) << error.what();
  }
}

TEST(LocalLauncherPort, FindsAFreePort) {
  const int port = pick_free_port();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

}  // namespace
}  // namespace rwkv::dist
