// The C++ model against the independent PyTorch reference (tests/reference/rwkv4_reference.py, written from
// the spec): loss, logits and every parameter gradient on a fixed batch of a tiny model whose weights are
// random everywhere, and one clipped Adam step. Skips when /usr/bin/python3 has no torch/h5py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <filesystem>
#include <optional>

#include "autograd/functions.h"
#include "core/cuda_runtime.h"
#include "tests/test_util.h"
#include "tests/train/model/model_test_util.h"
#include "train/io/hdf5.h"
#include "train/io/model_io.h"
#include "train/optim/optimizer.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

// Debian's torch is for /usr/bin/python3 (not a pyenv python3 on PATH); the GPU host has its own python3.
std::string python_with_torch() {
  for (const char* python : {"/usr/bin/python3", "python3"}) {
    const std::string probe = std::string(python) + " -c 'import torch, h5py' > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return python;
  }
  return "";
}

// The repository, where tests/reference/ lives: RWKV_SOURCE_DIR in the environment (a binary run on another
// machine, e.g. the GPU host), else where this test was built from.
std::string source_dir() {
  const char* from_environment = std::getenv("RWKV_SOURCE_DIR");
  return from_environment ? from_environment : RWKV_SOURCE_DIR;
}

class TrainReference : public ::testing::Test {
protected:
  void SetUp() override {
    python_ = python_with_torch();
    if (python_.empty()) {
      GTEST_SKIP() << "no python3 with torch and h5py (Debian: apt-get install python3-torch python3-h5py)";
    }
    dir_ = fs::temp_directory_path() / ("rwkv_reference_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }

  // Writes the model and batch, runs the reference with `extra` arguments, returns the output file.
  hdf5::File run_reference(const Rwkv4& model, const Tensor& idx, const Tensor& targets, const std::string& extra) {
    const std::string weights = (dir_ / "w.h5").string(), batch = (dir_ / "batch.h5").string();
    const std::string out = (dir_ / "out.h5").string();
    save_model(model, weights);
    {
      hdf5::File file = hdf5::File::create(batch);
      file.root().write_tensor("idx", idx);
      file.root().write_tensor("targets", targets);
      file.close();
    }
    const std::string command = python_ + " " + source_dir() + "/tests/reference/rwkv4_reference.py --weights " + weights + " --batch " + batch +
                                " --out " + out + " " + extra;
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return hdf5::File::open_read(out);
  }

  // The first test: loss, logits and every gradient against the reference (which runs once).
  void check_loss_logits_and_gradients(bool fused);

  fs::path dir_;
  std::string python_;
  std::optional<hdf5::File> reference_;
};

TEST_F(TrainReference, LossLogitsAndEveryGradientMatchPyTorch) {
  // Both ways to the loss: the training path (the head fused into the loss, Rwkv4::loss) and the plain
  // composition on the logits (language_model_loss).
  for (const bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "Rwkv4::loss (fused head)" : "language_model_loss(logits)");
    check_loss_logits_and_gradients(fused);
  }
}

void TrainReference::check_loss_logits_and_gradients(bool fused) {
  Rwkv4 model(testing::tiny_config());  // 2 layers, n_embd 64, vocab 97, ctx 32
  testing::randomize_parameters(model, 11);
  const Tensor idx = testing::random_ids({3, 32}, 97, 12), targets = testing::random_ids({3, 32}, 97, 13);
  if (!reference_) reference_.emplace(run_reference(model, idx, targets, "--dtype float64"));
  const hdf5::File& reference = *reference_;

  const ag::Variable logits = model.forward(idx);
  const ag::Variable loss = fused ? model.loss(idx, targets) : language_model_loss(logits, targets);
  loss.backward();

  const double expected_loss = reference.root().read_tensor("loss", DType::f64).item();
  EXPECT_LE(std::abs(loss.data().item() - expected_loss) / std::abs(expected_loss), 1e-6)
      << "loss " << loss.data().item() << " vs reference " << expected_loss;
  EXPECT_LE(testing::norm_relative_error(logits.data(), reference.root().read_tensor("logits", DType::f64)), 1e-5);
  const hdf5::Group grads = reference.open_group("grad");
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, parameter] : model.named_parameters()) {
    ASSERT_TRUE(grads.contains_dataset(name)) << name;
    const double error = testing::norm_relative_error(parameter.grad(), grads.read_tensor(name, DType::f64));
    EXPECT_LE(error, 1e-5) << name;
    if (error > worst) {
      worst = error;
      worst_name = name;
    }
  }
  std::printf("loss %.9g vs reference %.9g (relative error %.2e); worst gradient error %.2e (%s)\n",
              loss.data().item(), expected_loss, std::abs(loss.data().item() - expected_loss) / expected_loss, worst,
              worst_name.c_str());
}

TEST_F(TrainReference, OneClippedAdamStepMatchesPyTorch) {
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 21);
  const Tensor idx = testing::random_ids({3, 32}, 97, 22), targets = testing::random_ids({3, 32}, 97, 23);
  // Adam with RWKV-LM's groups (time_decay 2x, time_first 3x) after clipping to global norm 1.0.
  const hdf5::File reference = run_reference(model, idx, targets, "--dtype float64 --adam 1e-3,0.9,0.99,1e-8 --grad_clip 1.0");

  TrainConfig config;
  config.lr_init = 1e-3;
  config.beta1 = 0.9;
  config.beta2 = 0.99;
  config.adam_eps = 1e-8;
  config.grad_clip = 1.0;
  Optimizer optimizer(model.named_parameters(), config);
  model.loss(idx, targets).backward();  // as the trainer does
  const StepReport report = optimizer.step(1e-3);
  ASSERT_TRUE(report.applied);
  EXPECT_LE(std::abs(report.grad_norm - reference.root().double_attribute("grad_norm")) /
                reference.root().double_attribute("grad_norm"),
            1e-5);
  const hdf5::Group updated = reference.open_group("updated");
  double worst = 0;
  for (const auto& [name, parameter] : model.named_parameters()) {
    const double error = testing::norm_relative_error(parameter.data(), updated.read_tensor(name, DType::f64));
    EXPECT_LE(error, 1e-6) << name;
    worst = std::max(worst, error);
  }
  std::printf("worst updated-parameter error after one Adam step: %.2e\n", worst);
}

// The same comparison with the model on the GPU (fp32, cuBLAS without TF32): ≤ 1e-4.
class CudaReference : public TrainReference {
protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    TrainReference::SetUp();
  }
};

TEST_F(CudaReference, LossAndEveryGradientMatchPyTorchInFp32) {
  Rwkv4 model(testing::tiny_config());
  testing::randomize_parameters(model, 11);
  const Tensor idx = testing::random_ids({3, 32}, 97, 12), targets = testing::random_ids({3, 32}, 97, 13);
  const hdf5::File reference = run_reference(model, idx, targets, "--dtype float64");
  const Device gpu = Device::cuda(0);
  model.to(gpu);
  const ag::Variable logits = model.forward(idx.to(gpu));
  const ag::Variable loss = model.loss(idx.to(gpu), targets.to(gpu));  // the trainer's fused head and loss
  loss.backward();
  const double expected_loss = reference.root().read_tensor("loss", DType::f64).item();
  const double loss_error = std::abs(loss.data().item() - expected_loss) / std::abs(expected_loss);
  EXPECT_LE(loss_error, 1e-4);
  EXPECT_LE(testing::norm_relative_error(logits.data(), reference.root().read_tensor("logits", DType::f64)), 1e-4);
  const hdf5::Group grads = reference.open_group("grad");
  double worst = 0;
  for (const auto& [name, parameter] : model.named_parameters()) {
    const double error = testing::norm_relative_error(parameter.grad(), grads.read_tensor(name, DType::f64));
    EXPECT_LE(error, 1e-4) << name;
    worst = std::max(worst, error);
  }
  std::printf("CUDA fp32: loss relative error %.2e, worst gradient error %.2e\n", loss_error, worst);
}

}  // namespace
}  // namespace rwkv
