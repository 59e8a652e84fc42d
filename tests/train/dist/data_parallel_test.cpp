// Data-parallel pieces that run in one process: the launcher's environment, the single-process communicator,
// gradient averaging (against a fake second rank) and the zero option. The MPI path is tested end to end by
// tests/cli/data_parallel.sh, ZeRO-1 in one process by TrainTrainer.ZeroOne*.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <optional>

#include "autograd/functions.h"
#include "train/dist/gradient_averager.h"
#include "train/dist/launch_environment.h"
#include "train/dist/single_process.h"
#include "train/config/config.h"

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

// Rank 0 of two whose peer contributes peer(i) to element i of every float all-reduce; records each
// all-reduce's length.
class FakePeerCommunicator final : public Communicator {
public:
  explicit FakePeerCommunicator(std::function<float(size_t)> peer) : peer_(std::move(peer)) {}
  explicit FakePeerCommunicator(std::vector<float> values)
      : peer_([values](size_t i) { return values.at(i); }) {}
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 2; }
  std::string name() const override { return "fake"; }
  void all_reduce_sum(std::span<float> values) override {
    lengths.push_back(values.size());
    for (size_t i = 0; i < values.size(); ++i) values[i] += peer_(i);
  }
  void all_reduce_sum(std::span<double>) override {}
  void reduce_scatter_sum(std::span<const float>, std::span<float>) override {}
  void all_gather(std::span<const float>, std::span<float>) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  void abort(int) override {}

  std::vector<size_t> lengths;

private:
  std::function<float(size_t)> peer_;
};

// A peer that contributes 1 to every element: the mean of a gradient g is then (g + 1) / 2.
FakePeerCommunicator counting_peer() {
  return FakePeerCommunicator([](size_t) { return 1.0f; });
}

TEST(DataParallelGradients, AveragesEveryGradientAndTreatsMissingOnesAsZero) {
  OptimizerSlot a, b;
  a.name = "a";
  a.parameter = ag::Variable(Tensor::zeros({2, 2}), true);
  a.parameter.mutable_grad() = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  b.name = "b";
  b.parameter = ag::Variable(Tensor::zeros({3}), true);  // no gradient on this rank
  std::vector<OptimizerSlot> slots{a, b};
  FakePeerCommunicator peer({10, 20, 30, 3, 2, 1, 0});  // packed in reverse parameter order: b, then a
  GradientAverager(peer, slots, size_t{1} << 20).average();
  EXPECT_EQ(slots[0].parameter.grad().to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
  ASSERT_TRUE(slots[1].parameter.grad().defined());
  EXPECT_EQ(slots[1].parameter.grad().to_vector<float>(), (std::vector<float>{5, 10, 15}));
}


// A chain y = sum(((x·w0)·w1)·w2 ...): backward produces the gradients of w3, w2, w1, w0 in that order.
struct Chain {
  std::vector<OptimizerSlot> slots;
  ag::Variable input = ag::Variable(Tensor::from_vector(std::vector<float>{0.5f, -1.0f, 2.0f, 0.25f}, {1, 4}));
  Chain() {
    for (int i = 0; i < 4; ++i) {
      OptimizerSlot slot;
      slot.name = "w" + std::to_string(i);
      std::vector<float> values(16);
      for (size_t j = 0; j < values.size(); ++j) values[j] = 0.1f * static_cast<float>((i * 7 + j * 3) % 11) - 0.4f;
      slot.parameter = ag::Variable(Tensor::from_vector(values, {4, 4}), true);
      slots.push_back(slot);
    }
  }
  ag::Variable loss(size_t skip = 99) const {  // skip: a weight left out of the graph
    ag::Variable h = input;
    for (size_t i = 0; i < slots.size(); ++i) {
      if (i != skip) h = ag::matmul(h, slots[i].parameter);
    }
    return ag::sum_all(ag::mul(h, h));
  }
};

TEST(DataParallelGradients, BucketsStartDuringBackwardInReverseParameterOrder) {
  Chain chain;
  // The plain gradients, then the averaged ones: (g + 1) / 2 for the fake peer.
  chain.loss().backward();
  std::vector<std::vector<float>> plain;
  for (OptimizerSlot& slot : chain.slots) {
    plain.push_back(slot.parameter.grad().to_vector<float>());
    slot.parameter.zero_grad();
  }
  FakePeerCommunicator peer = counting_peer();
  GradientAverager averager(peer, chain.slots, 2 * 16 * sizeof(float));  // two weights per bucket
  EXPECT_EQ(averager.bucket_count(), 2);
  for (int step = 0; step < 2; ++step) {  // the buffers are reused from step to step
    peer.lengths.clear();
    for (OptimizerSlot& slot : chain.slots) slot.parameter.zero_grad();
    averager.prepare_for_final_backward();
    chain.loss().backward();
    EXPECT_EQ(peer.lengths, (std::vector<size_t>{32, 32})) << "both buckets start inside backward";
    averager.finish();
    EXPECT_EQ(averager.buckets_started_during_backward(), 2);
    EXPECT_EQ(peer.lengths.size(), 2u) << "finish starts nothing more";
    for (size_t i = 0; i < chain.slots.size(); ++i) {
      const std::vector<float> averaged = chain.slots[i].parameter.grad().to_vector<float>();
      for (size_t j = 0; j < averaged.size(); ++j) {
        ASSERT_EQ(averaged[j], (plain[i][j] + 1.0f) * 0.5f) << chain.slots[i].name << "[" << j << "]";
      }
    }
  }
}

TEST(DataParallelGradients, AccumulationReducesOnlyAfterTheLastMicroBatchAndMissingGradientsCountAsZero) {
  Chain chain;
  FakePeerCommunicator peer = counting_peer();
  GradientAverager averager(peer, chain.slots, 16 * sizeof(float));  // one weight per bucket: w3, w2, w1, w0
  chain.loss().backward();  // an earlier micro-batch: no collective
  EXPECT_TRUE(peer.lengths.empty());
  averager.prepare_for_final_backward();
  chain.loss(/*skip=*/2).backward();  // w2 gets no gradient in this micro-batch, but had one before
  // Bucket 0 (w3) starts; bucket 1 (w2) never completes inside backward, so buckets 1..3 wait for finish().
  EXPECT_EQ(peer.lengths.size(), 1u);
  averager.finish();
  EXPECT_EQ(averager.buckets_started_during_backward(), 1);
  EXPECT_EQ(peer.lengths.size(), 4u);

  Chain fresh;  // a weight that never had a gradient becomes (0 + 1) / 2
  FakePeerCommunicator other = counting_peer();
  GradientAverager unused(other, fresh.slots, 16 * sizeof(float));
  unused.prepare_for_final_backward();
  fresh.loss(/*skip=*/1).backward();
  unused.finish();
  ASSERT_TRUE(fresh.slots[1].parameter.grad().defined());
  EXPECT_EQ(fresh.slots[1].parameter.grad().to_vector<float>(), std::vector<float>(16, 0.5f));
}

TEST(DataParallelGradients, AGradientThatGrowsAfterItsBucketStartedIsAnError) {
  Chain chain;
  FakePeerCommunicator peer = counting_peer();
  GradientAverager averager(peer, chain.slots, 16 * sizeof(float));
  averager.prepare_for_final_backward();
  chain.loss().backward();
  try {
    chain.loss().backward();  // the same weights again: their buckets were already being reduced
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("grew after its bucket's all-reduce had started"), std::string::npos)
        << error.what();
  }
}

TEST(DataParallelGradients, WithoutALauncherNothingIsInstalled) {
  Chain chain;
  SingleProcessCommunicator single;
  GradientAverager averager(single, chain.slots, 64);
  EXPECT_EQ(averager.bucket_count(), 0);
  averager.prepare_for_final_backward();
  chain.loss().backward();
  const std::vector<float> before = chain.slots[0].parameter.grad().to_vector<float>();
  averager.finish();
  EXPECT_EQ(chain.slots[0].parameter.grad().to_vector<float>(), before);
}

TEST(DataParallelConfig, BucketSizeMustBePositive) {
  TrainConfig config;
  config.grad_bucket_mb = 0;
  EXPECT_THROW(config.validate(), Error);
  config.grad_bucket_mb = 0.01;
  EXPECT_NO_THROW(config.validate());
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
