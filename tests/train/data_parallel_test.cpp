// Data-parallel pieces that run in one process: the launcher's environment, the single-process communicator,
// gradient averaging (against a fake second rank) and the zero option. The MPI path is tested end to end by
// tests/cli/data_parallel.sh, ZeRO-1 in one process by TrainTrainer.ZeroOne*.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>

#include "train/dist/gradient_averager.h"
#include "train/dist/launch_environment.h"
#include "train/dist/single_process.h"
#include "train/config.h"

namespace rwkv::dist {
namespace {

// Sets launcher variables for one test and restores what was there.
class ScopedEnvironment {
public:
  void set(const char* name, const char* value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(DataParallelLaunch, ReadsOpenMpiThenPmiVariables) {
  ScopedEnvironment environment;
  for (const char* name :
       {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "WORLD_SIZE", "RANK"}) {
    environment.set(name, nullptr);
  }
  EXPECT_FALSE(detect_launch_environment().by_mpi);
  EXPECT_EQ(detect_launch_environment().world_size, 1);

  environment.set("WORLD_SIZE", "8");  // torchrun's: seen, but not an MPI launch
  environment.set("RANK", "5");
  LaunchEnvironment torchrun = detect_launch_environment();
  EXPECT_FALSE(torchrun.by_mpi);
  EXPECT_EQ(torchrun.world_size, 8);
  EXPECT_EQ(torchrun.rank, 5);

  environment.set("PMI_SIZE", "4");
  environment.set("PMI_RANK", "3");
  LaunchEnvironment launch = detect_launch_environment();
  EXPECT_TRUE(launch.by_mpi);
  EXPECT_EQ(launch.rank, 3);
  EXPECT_EQ(launch.world_size, 4);

  environment.set("OMPI_COMM_WORLD_SIZE", "2");
  environment.set("OMPI_COMM_WORLD_RANK", "1");
  launch = detect_launch_environment();
  EXPECT_EQ(launch.rank, 1);
  EXPECT_EQ(launch.world_size, 2);
  EXPECT_NE(launch.source.find("OMPI"), std::string::npos);
}

TEST(DataParallelLaunch, ReadsTheTorchrunRendezvousAndNamesWhatIsMissing) {
  ScopedEnvironment environment;
  environment.set("MASTER_ADDR", "127.0.0.1");
  environment.set("MASTER_PORT", "29500");
  environment.set("LOCAL_RANK", "3");
  environment.set("LOCAL_WORLD_SIZE", "8");
  const TcpRendezvous rendezvous = detect_tcp_rendezvous();
  EXPECT_EQ(rendezvous.master_host, "127.0.0.1");
  EXPECT_EQ(rendezvous.master_port, 29500);
  EXPECT_EQ(rendezvous.local_rank, 3);
  EXPECT_EQ(rendezvous.local_size, 8);

  auto error_of = [] {
    try {
      detect_tcp_rendezvous();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  environment.set("MASTER_PORT", "port");
  EXPECT_NE(error_of().find("MASTER_PORT must be an integer"), std::string::npos) << error_of();
  environment.set("MASTER_PORT", "29500");
  environment.set("LOCAL_RANK", nullptr);
  EXPECT_NE(error_of().find("LOCAL_RANK is not set"), std::string::npos) << error_of();
  environment.set("MASTER_ADDR", nullptr);
  EXPECT_NE(error_of().find("MASTER_ADDR is not set"), std::string::npos) << error_of();
}

TEST(DataParallelCommunicator, SingleProcessLeavesBuffersAlone) {
  SingleProcessCommunicator single;
  EXPECT_EQ(single.world_size(), 1);
  EXPECT_TRUE(single.is_root());
  std::vector<float> values{1.5f, -2.0f};
  single.all_reduce_sum(values);
  single.barrier();
  EXPECT_EQ(values, (std::vector<float>{1.5f, -2.0f}));
}

// Rank 0 of two whose peer contributes `peer` to every float all-reduce.
class FakePeerCommunicator final : public Communicator {
public:
  explicit FakePeerCommunicator(std::vector<float> peer) : peer_(std::move(peer)) {}
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 2; }
  std::string name() const override { return "fake"; }
  void all_reduce_sum(std::span<float> values) override {
    ASSERT_EQ(values.size(), peer_.size());
    for (size_t i = 0; i < values.size(); ++i) values[i] += peer_[i];
  }
  void all_reduce_sum(std::span<double>) override {}
  void reduce_scatter_sum(std::span<const float>, std::span<float>) override {}
  void all_gather(std::span<const float>, std::span<float>) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  void abort(int) override {}

private:
  std::vector<float> peer_;
};

TEST(DataParallelGradients, AveragesEveryGradientAndTreatsMissingOnesAsZero) {
  OptimizerSlot a, b;
  a.name = "a";
  a.parameter = ag::Variable(Tensor::zeros({2, 2}), true);
  a.parameter.mutable_grad() = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  b.name = "b";
  b.parameter = ag::Variable(Tensor::zeros({3}), true);  // no gradient on this rank
  std::vector<OptimizerSlot> slots{a, b};
  FakePeerCommunicator peer({3, 2, 1, 0, 10, 20, 30});
  GradientAverager(peer).average(slots);
  EXPECT_EQ(slots[0].parameter.grad().to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
  ASSERT_TRUE(slots[1].parameter.grad().defined());
  EXPECT_EQ(slots[1].parameter.grad().to_vector<float>(), (std::vector<float>{5, 10, 15}));
}

TEST(DataParallelConfig, ZeroIsZeroOrOneAndNeedsAdam) {
  TrainConfig config;
  config.zero = 1;
  EXPECT_NO_THROW(config.validate());
  config.zero = 2;
  EXPECT_THROW(config.validate(), Error);
  config.zero = 1;
  config.optimizer = "sgd";
  EXPECT_THROW(config.validate(), Error);
}

}  // namespace
}  // namespace rwkv::dist
