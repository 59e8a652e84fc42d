// precision = bf16 against fp32 on the CPU: bf16 activations and GEMM operands, fp32 master weights and
// gradients. The same model and batch give the same loss within 1e-2 relative and nearby gradients, and a bf16
// training run tracks the fp32 run's loss curve.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "train/model/model.h"
#include "train/model/model_init.h"
#include "train/trainer.h"
#include "tests/test_util.h"
#include "tests/train/model/model_test_util.h"
#include "tests/train/train_test_util.h"

namespace rwkv {
namespace {

struct LossAndGrads {
  double loss;
  std::map<std::string, Tensor> grads;
};

LossAndGrads loss_and_grads(Rwkv4& model, const Tensor& idx, const Tensor& targets) {
  model.zero_grad();
  const ag::Variable loss = model.loss(idx, targets);
  loss.backward();
  LossAndGrads out{loss.data().to(DType::f64).to_vector<double>()[0], {}};
  for (auto& [name, parameter] : model.named_parameters()) out.grads[name] = parameter.grad();
  return out;
}

struct Batch {
  Tensor idx, targets;
};
Batch random_batch(int64_t batch, int64_t time, int64_t vocab, uint64_t seed) {
  Generator generator(seed);
  std::vector<int64_t> ids(static_cast<size_t>(batch * (time + 1)));
  for (int64_t& id : ids) id = static_cast<int64_t>(generator.next_u64() % static_cast<uint64_t>(vocab));
  const Tensor all = Tensor::from_vector(ids, {batch, time + 1});
  return {all.slice(1, 0, time).contiguous(), all.slice(1, 1, time + 1).contiguous()};
}

TEST(MixedPrecision, Bf16LossAndGradientsAgreeWithFp32OnAFixedBatch) {
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 11);
  const Batch batch = random_batch(4, 32, model.config().vocab_size, 5);
  const LossAndGrads fp32 = loss_and_grads(model, batch.idx, batch.targets);
  model.set_activation_dtype(DType::bf16);
  const LossAndGrads bf16 = loss_and_grads(model, batch.idx, batch.targets);

  const double loss_error = std::abs(bf16.loss - fp32.loss) / std::abs(fp32.loss);
  std::cout << "[ error    ] loss fp32 " << fp32.loss << " bf16 " << bf16.loss << ": relative " << loss_error << "\n";
  EXPECT_LT(loss_error, 1e-2);
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, grad] : fp32.grads) {
    const Tensor& mixed = bf16.grads.at(name);
    ASSERT_TRUE(mixed.defined()) << name;
    // Masters and their gradients stay fp32.
    EXPECT_EQ(mixed.dtype(), DType::f32) << name;
    EXPECT_EQ(model.named(name).data().dtype(), DType::f32) << name;
    const double error = testing::norm_relative_error(mixed, grad);
    if (error > worst) worst = error, worst_name = name;
  }
  std::cout << "[ error    ] worst gradient " << worst_name << ": relative (norm) " << worst << "\n";
  EXPECT_LT(worst, 3e-2) << worst_name;
}

TEST(MixedPrecision, Bf16LossIsNotTheFp32LossAndIsDeterministic) {
  // Guards against a bf16 setting that silently computes in fp32, and against nondeterminism.
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 12);
  const Batch batch = random_batch(2, 32, model.config().vocab_size, 6);
  const double fp32 = loss_and_grads(model, batch.idx, batch.targets).loss;
  model.set_activation_dtype(DType::bf16);
  const LossAndGrads first = loss_and_grads(model, batch.idx, batch.targets);
  const LossAndGrads second = loss_and_grads(model, batch.idx, batch.targets);
  EXPECT_NE(first.loss, fp32);
  EXPECT_EQ(first.loss, second.loss);
  for (const auto& [name, grad] : first.grads) {
    EXPECT_EQ(grad.to_vector<float>(), second.grads.at(name).to_vector<float>()) << name;
  }
}

TEST(MixedPrecision, Bf16GradientCheckpointingRecomputesTheSameGradients) {
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 13);
  model.set_activation_dtype(DType::bf16);
  const Batch batch = random_batch(2, 32, model.config().vocab_size, 7);
  const LossAndGrads plain = loss_and_grads(model, batch.idx, batch.targets);
  model.set_gradient_checkpointing(true);
  const LossAndGrads checkpointed = loss_and_grads(model, batch.idx, batch.targets);
  EXPECT_EQ(plain.loss, checkpointed.loss);
  for (const auto& [name, grad] : plain.grads) {
    EXPECT_EQ(grad.to_vector<float>(), checkpointed.grads.at(name).to_vector<float>()) << name;
  }
}

TEST(MixedPrecision, Bf16ChunkedForwardWithStateMatchesTheWholeSequence) {
  // The RNN/chunked mode with an fp32 state carried into bf16 activations.
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 14);
  model.set_activation_dtype(DType::bf16);
  const Batch batch = random_batch(2, 32, model.config().vocab_size, 8);
  const Tensor whole = model.forward(batch.idx).data();
  EXPECT_EQ(whole.dtype(), DType::f32);
  ModelState state = zero_state(model.config(), 2);
  const Tensor first = model.forward(batch.idx.slice(1, 0, 16).contiguous(), &state).data();
  const Tensor second = model.forward(batch.idx.slice(1, 16, 32).contiguous(), &state).data();
  EXPECT_LT(testing::relative_error(first, whole.slice(1, 0, 16)), 1e-6);
  // The carried tokens were rounded to bf16 either way; the WKV state is fp32 in both.
  EXPECT_LT(testing::relative_error(second, whole.slice(1, 16, 32)), 2e-2);
}

class MixedPrecisionTraining : public testing::TempDirTest {};

TEST_F(MixedPrecisionTraining, Bf16RunTracksTheFp32LossCurve) {
  testing::write_fox_corpus(dir_ / "corpus.txt");
  auto run = [&](const std::string& precision) {
    TrainConfig config = testing::tiny_training_config(dir_ / "corpus.txt", dir_ / precision);
    config.precision = precision;
    config.epoch_count = 6;
    config.warmup_steps = 3;
    std::vector<double> losses;
    for (const StepRecord& r : run_training(config, TrainerHooks{nullptr, true}).records) losses.push_back(r.loss);
    return losses;
  };
  const std::vector<double> fp32 = run("fp32"), bf16 = run("bf16");
  ASSERT_EQ(fp32.size(), bf16.size());
  ASSERT_GE(fp32.size(), 20u);
  EXPECT_LT(fp32.back(), fp32.front() - 0.5);  // it learns
  double worst = 0;
  for (size_t i = 0; i < fp32.size(); ++i) worst = std::max(worst, std::abs(bf16[i] - fp32[i]) / fp32[i]);
  std::cout << "[ error    ] " << fp32.size() << " steps, loss " << fp32.front() << " -> fp32 " << fp32.back()
            << " / bf16 " << bf16.back() << "; worst relative difference per step " << worst << "\n";
  EXPECT_LT(worst, 5e-3);
  EXPECT_LT(std::abs(bf16.back() - fp32.back()) / fp32.back(), 5e-3);
}

// The bf16 model on the GPU (cuBLAS bf16 GEMMs, the CUDA fused kernels and WKV with bf16 I/O) against the same
// model on the CPU in bf16 and in fp32.
class CudaMixedPrecision : public ::testing::Test {
protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(CudaMixedPrecision, Bf16ModelOnTheGpuMatchesTheCpu) {
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 15);
  const Batch batch = random_batch(4, 32, model.config().vocab_size, 9);
  const LossAndGrads cpu_fp32 = loss_and_grads(model, batch.idx, batch.targets);
  model.set_activation_dtype(DType::bf16);
  const LossAndGrads cpu_bf16 = loss_and_grads(model, batch.idx, batch.targets);
  const Device gpu = Device::cuda(0);
  model.to(gpu);
  const LossAndGrads gpu_bf16 = loss_and_grads(model, batch.idx.to(gpu), batch.targets.to(gpu));
  const LossAndGrads gpu_bf16_again = loss_and_grads(model, batch.idx.to(gpu), batch.targets.to(gpu));
  EXPECT_EQ(gpu_bf16.loss, gpu_bf16_again.loss);  // deterministic
  const double vs_cpu_bf16 = std::abs(gpu_bf16.loss - cpu_bf16.loss) / cpu_bf16.loss;
  const double vs_cpu_fp32 = std::abs(gpu_bf16.loss - cpu_fp32.loss) / cpu_fp32.loss;
  double worst_bf16 = 0, worst_fp32 = 0;
  for (const auto& [name, grad] : gpu_bf16.grads) {
    ASSERT_EQ(grad.dtype(), DType::f32) << name;
    const Tensor on_host = grad.to(Device::cpu());
    EXPECT_EQ(on_host.to_vector<float>(), gpu_bf16_again.grads.at(name).to(Device::cpu()).to_vector<float>())
        << name;
    worst_bf16 = std::max(worst_bf16, testing::norm_relative_error(on_host, cpu_bf16.grads.at(name)));
    worst_fp32 = std::max(worst_fp32, testing::norm_relative_error(on_host, cpu_fp32.grads.at(name)));
  }
  std::cout << "[ error    ] GPU bf16 loss vs CPU bf16 " << vs_cpu_bf16 << ", vs CPU fp32 " << vs_cpu_fp32
            << "; worst gradient vs CPU bf16 " << worst_bf16 << ", vs CPU fp32 " << worst_fp32 << "\n";
  EXPECT_LT(vs_cpu_bf16, 5e-3);
  EXPECT_LT(vs_cpu_fp32, 1e-2);
  EXPECT_LT(worst_bf16, 5e-2);
  EXPECT_LT(worst_fp32, 5e-2);
}

}  // namespace
}  // namespace rwkv
