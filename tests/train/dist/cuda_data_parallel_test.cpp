// The NCCL path on one GPU (the GPU host has one): a one-rank NCCL communicator met over the TCP bootstrap runs
// blocking and started all-reduces of device memory and the bucketed gradient averaging of GPU parameters,
// leaving one rank's values as they are. Multi-GPU runs need a multi-GPU host. Compiled with NCCL only.
#include <gtest/gtest.h>

#ifdef RWKV_HAVE_NCCL
#include <chrono>

#include "autograd/functions.h"
#include "core/cuda_runtime.h"
#include "train/dist/gradient_averager.h"
#include "train/dist/local_launcher.h"
#include "train/dist/nccl_communicator.h"

namespace rwkv::dist {
namespace {

class CudaDataParallel : public ::testing::Test {
protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    nccl_ = make_nccl_over_tcp({0, 1, 0, 1}, "127.0.0.1", pick_free_port(), 0, std::chrono::seconds(60));
  }
  std::unique_ptr<NcclCommunicator> nccl_;
};

TEST_F(CudaDataParallel, OneRankAllReducesDeviceAndHostMemory) {
  EXPECT_TRUE(nccl_->accepts_device_memory());
  EXPECT_TRUE(nccl_->is_data_parallel());
  const std::vector<float> values{1.5f, -2.0f, 3.25f, 0.125f};
  Tensor device = Tensor::from_vector(values, {4}).to(Device::cuda(0));
  nccl_->all_reduce_sum(std::span<float>(device.data<float>(), 4));
  EXPECT_EQ(device.to_vector<float>(), values);
  auto pending = nccl_->start_all_reduce_sum(std::span<float>(device.data<float>(), 4));
  pending->finish();
  EXPECT_EQ(device.to_vector<float>(), values);
  std::vector<double> host{2.5, -1.0};
  nccl_->all_reduce_sum(std::span<double>(host));
  EXPECT_EQ(host, (std::vector<double>{2.5, -1.0}));
}

TEST_F(CudaDataParallel, BucketedAveragingOfGpuGradientsKeepsOneRanksGradients) {
  std::vector<OptimizerSlot> slots;
  for (int i = 0; i < 4; ++i) {
    OptimizerSlot slot;
    slot.name = "w" + std::to_string(i);
    std::vector<float> values(64 * 64);
    for (size_t j = 0; j < values.size(); ++j) values[j] = 0.01f * static_cast<float>((i * 13 + j * 7) % 23) - 0.1f;
    slot.parameter = ag::Variable(Tensor::from_vector(values, {64, 64}).to(Device::cuda(0)), true);
    slots.push_back(slot);
  }
  const auto loss = [&] {
    ag::Variable h(Tensor::full({8, 64}, 0.5, DType::f32, Device::cuda(0)));
    for (const OptimizerSlot& slot : slots) h = ag::matmul(h, slot.parameter);
    return ag::sum_all(ag::mul(h, h));
  };
  loss().backward();
  std::vector<std::vector<float>> plain;
  for (OptimizerSlot& slot : slots) {
    plain.push_back(slot.parameter.grad().to_vector<float>());
    slot.parameter.zero_grad();
  }
  GradientAverager averager(*nccl_, slots, 64 * 64 * sizeof(float));  // one weight per bucket
  ASSERT_EQ(averager.bucket_count(), 4);
  averager.prepare_for_final_backward();
  loss().backward();
  averager.finish();
  EXPECT_EQ(averager.buckets_started_during_backward(), 4);
  for (size_t i = 0; i < slots.size(); ++i) EXPECT_EQ(slots[i].parameter.grad().to_vector<float>(), plain[i]) << i;
}

}  // namespace
}  // namespace rwkv::dist
#endif
