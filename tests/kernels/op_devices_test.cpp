// Every op refuses operands on different devices with a clear error, before it reads any of them.
// Runs without a GPU: "CUDA" tensors here come from an allocator whose memory the host cannot read (PROT_NONE),
// so an op whose CPU path forgets to check an operand's device crashes instead of reading it, and an op that
// dispatches on its first operand to the CUDA path without checking the others fails with a CUDA error (no
// device, or a host pointer handed to a kernel on a real GPU) instead of the expected message.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <functional>
#include <string>
#include <vector>

#include "core/allocator_testing.h"
#include "kernels/dropout.h"
#include "kernels/ops.h"
#include "kernels/rwkv_ops.h"
#include "tests/test_util.h"

namespace rwkv {
namespace {

using testing::random_ids;
using testing::random_tensor;

// Memory that exists but that no host access may touch: a stand-in for device memory on a machine without one.
class UnreadableDeviceAllocator final : public Allocator {
public:
  void* allocate(size_t bytes) override {
    void* pointer = mmap(nullptr, rounded(bytes), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    RWKV_CHECK(pointer != MAP_FAILED, "UnreadableDeviceAllocator: mmap failed");
    return pointer;
  }
  void deallocate(void* pointer, size_t bytes) override { munmap(pointer, rounded(bytes)); }
  Device device() const override { return Device::cuda(0); }
  AllocatorStats stats() const override { return {}; }
  void reset_peak() override {}

private:
  static size_t rounded(size_t bytes) { return std::max<size_t>(bytes, 1); }
};

class OpDevices : public ::testing::Test {
protected:
  void SetUp() override { set_cuda_allocator_for_testing(&device_memory_); }
  void TearDown() override { set_cuda_allocator_for_testing(nullptr); }

  // A tensor of t's shape and dtype on "cuda:0".
  static Tensor on_device(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), Device::cuda(0)); }

  // Runs `op` once per operand with that operand (alone) on the device and the others on the CPU: each time the
  // op must throw an rwkv::Error that says the operands are on different devices.
  void expect_every_operand_checked(const std::string& name, const std::vector<Tensor>& operands,
                                    const std::function<void(std::vector<Tensor>&)>& op) {
    {
      std::vector<Tensor> all_on_cpu = operands;
      ASSERT_NO_THROW(op(all_on_cpu)) << name << ": the CPU operands themselves are invalid";
    }
    for (size_t moved = 0; moved < operands.size(); ++moved) {
      std::vector<Tensor> mixed = operands;
      mixed[moved] = on_device(operands[moved]);
      try {
        op(mixed);
        ADD_FAILURE() << name << ": operand " << moved << " on cuda:0 beside CPU operands was accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("different devices"), std::string::npos)
            << name << ": operand " << moved << " on cuda:0 gave another error: " << e.what();
      }
    }
  }

private:
  UnreadableDeviceAllocator device_memory_;
};

constexpr int64_t B = 2, T = 3, C = 4, V = 5;

TEST_F(OpDevices, MatrixProducts) {
  expect_every_operand_checked("matmul", {random_tensor({3, C}, 1), random_tensor({C, V}, 2)},
                               [](std::vector<Tensor>& t) { ops::matmul(t[0], t[1]); });
  expect_every_operand_checked("matmul (out dtype)", {random_tensor({3, C}, 1), random_tensor({C, V}, 2)},
                               [](std::vector<Tensor>& t) { ops::matmul(t[0], t[1], false, false, DType::f32); });
  expect_every_operand_checked(
      "matmul_into", {random_tensor({3, C}, 1), random_tensor({C, V}, 2), random_tensor({3, V}, 3)},
      [](std::vector<Tensor>& t) { ops::matmul_into(t[0], t[1], false, false, t[2], 1.0); });
}

TEST_F(OpDevices, Elementwise) {
  for (Unary op : {Unary::neg, Unary::exp, Unary::sigmoid, Unary::relu, Unary::square}) {
    expect_every_operand_checked(
        std::string("unary_backward ") + unary_name(op),
        {random_tensor({B, C}, 1), random_tensor({B, C}, 2), random_tensor({B, C}, 3)},
        [op](std::vector<Tensor>& t) { ops::unary_backward(op, t[0], t[1], t[2]); });
  }
  for (Binary op : {Binary::add, Binary::sub, Binary::mul, Binary::div}) {
    expect_every_operand_checked(std::string("binary ") + binary_name(op),
                                 {random_tensor({B, C}, 1), random_tensor({C}, 2, DType::f32, 0.5f, 1.5f)},
                                 [op](std::vector<Tensor>& t) { ops::binary(op, t[0], t[1]); });
  }
  expect_every_operand_checked("accumulate_", {random_tensor({B, C}, 1), random_tensor({B, C}, 2)},
                               [](std::vector<Tensor>& t) { ops::accumulate_(t[0], t[1]); });
}

TEST_F(OpDevices, LayerNorm) {
  const Tensor x = random_tensor({B, T, C}, 1), weight = random_tensor({C}, 2), bias = random_tensor({C}, 3);
  expect_every_operand_checked("layernorm", {x, weight, bias},
                               [](std::vector<Tensor>& t) { ops::layernorm(t[0], t[1], t[2]); });
  const ops::LayerNormOutput forward = ops::layernorm(x, weight, bias);
  expect_every_operand_checked(
      "layernorm_backward", {random_tensor({B, T, C}, 4), x, weight, forward.mean, forward.rstd},
      [](std::vector<Tensor>& t) { ops::layernorm_backward(t[0], t[1], t[2], t[3], t[4]); });
}

TEST_F(OpDevices, EmbeddingAndTokenShift) {
  expect_every_operand_checked("embedding", {random_tensor({V, C}, 1), random_ids({B, T}, V, 2)},
                               [](std::vector<Tensor>& t) { ops::embedding(t[0], t[1]); });
  expect_every_operand_checked("embedding_backward", {random_tensor({B, T, C}, 1), random_ids({B, T}, V, 2)},
                               [](std::vector<Tensor>& t) { ops::embedding_backward(t[0], t[1], V); });
  expect_every_operand_checked("token_shift", {random_tensor({B, T, C}, 1), random_tensor({B, C}, 2)},
                               [](std::vector<Tensor>& t) { ops::token_shift(t[0], t[1]); });
}

TEST_F(OpDevices, CrossEntropy) {
  const Tensor logits = random_tensor({B, T, V}, 1), targets = random_ids({B, T}, V, 2);
  expect_every_operand_checked("cross_entropy", {logits, targets},
                               [](std::vector<Tensor>& t) { ops::cross_entropy(t[0], t[1]); });
  const ops::CrossEntropyOutput forward = ops::cross_entropy(logits, targets);
  expect_every_operand_checked("cross_entropy_backward", {logits, targets, forward.logsumexp},
                               [](std::vector<Tensor>& t) { ops::cross_entropy_backward(1.0, t[0], t[1], t[2]); });
  expect_every_operand_checked("l2wrap_backward_", {random_tensor({B, T, V}, 3), logits},
                               [](std::vector<Tensor>& t) { ops::l2wrap_backward_(t[0], t[1], 1e-4); });
}

TEST_F(OpDevices, Optimizer) {
  const ops::AdamHyper hyper{1e-3, 0.9, 0.99, 1e-8, 0.01, 1};
  expect_every_operand_checked(
      "adam_step_",
      {random_tensor({C}, 1), random_tensor({C}, 2), random_tensor({C}, 3), random_tensor({C}, 4, DType::f32, 0, 1)},
      [&](std::vector<Tensor>& t) { ops::adam_step_(t[0], t[1], t[2], t[3], hyper); });
  std::vector<Tensor> two_groups;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    two_groups.push_back(random_tensor({seed <= 4 ? C : 2 * C}, seed, DType::f32, 0, 1));
  }
  expect_every_operand_checked("adam_step_ (multi-tensor)", two_groups, [](std::vector<Tensor>& t) {
    ops::adam_step_({{&t[0], &t[1], &t[2], &t[3], 1e-3, 0.0}, {&t[4], &t[5], &t[6], &t[7], 2e-3, 0.01}},
                    {0.9, 0.99, 1e-8, 1}, 0.5);
  });
  expect_every_operand_checked("sum_of_squares (multi-tensor)", {random_tensor({C}, 1), random_tensor({B, C}, 2)},
                               [](std::vector<Tensor>& t) { ops::sum_of_squares(std::vector<Tensor>{t[0], t[1]}); });
}

TEST_F(OpDevices, Wkv) {
  const Tensor decay = random_tensor({C}, 1), first = random_tensor({C}, 2);
  const Tensor k = random_tensor({B, T, C}, 3), v = random_tensor({B, T, C}, 4);
  const Tensor state = ops::wkv(decay, first, k, v, Tensor(), true).state;
  expect_every_operand_checked("wkv", {decay, first, k, v, state},
                               [](std::vector<Tensor>& t) { ops::wkv(t[0], t[1], t[2], t[3], t[4], true); });
  const ops::WkvOutput forward = ops::wkv(decay, first, k, v, state, true);
  expect_every_operand_checked(
      "wkv_backward", {decay, first, k, v, forward.y, random_tensor({B, T, C}, 5), state, random_tensor({B, 3, C}, 6)},
      [](std::vector<Tensor>& t) { ops::wkv_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]); });
}

TEST_F(OpDevices, FusedRwkvOps) {
  const Tensor x = random_tensor({B, T, C}, 1), previous = random_tensor({B, C}, 2);
  const Tensor mix_k = random_tensor({C}, 3, DType::f32, 0, 1), mix_v = random_tensor({C}, 4, DType::f32, 0, 1),
               mix_r = random_tensor({C}, 5, DType::f32, 0, 1);
  expect_every_operand_checked("time_mix", {x, previous, mix_k, mix_v, mix_r},
                               [](std::vector<Tensor>& t) { ops::time_mix(t[0], t[1], {t[2], t[3], t[4]}); });
  expect_every_operand_checked(
      "time_mix_backward",
      {random_tensor({B, T, C}, 6), random_tensor({B, T, C}, 7), random_tensor({B, T, C}, 8), x, previous, mix_k,
       mix_v, mix_r},
      [](std::vector<Tensor>& t) { ops::time_mix_backward({t[0], t[1], t[2]}, t[3], t[4], {t[5], t[6], t[7]}); });

  const Tensor delta = random_tensor({B, T, C}, 9), weight = random_tensor({C}, 10), bias = random_tensor({C}, 11);
  expect_every_operand_checked("add_layernorm", {x, delta, weight, bias},
                               [](std::vector<Tensor>& t) { ops::add_layernorm(t[0], t[1], t[2], t[3], 1e-5); });
  const ops::AddLayerNormOutput forward = ops::add_layernorm(x, delta, weight, bias, 1e-5);
  expect_every_operand_checked(
      "add_layernorm_backward",
      {random_tensor({B, T, C}, 12), random_tensor({B, T, C}, 13), forward.sum, weight, forward.mean, forward.rstd},
      [](std::vector<Tensor>& t) { ops::add_layernorm_backward(t[0], t[1], t[2], t[3], t[4], t[5]); });

  expect_every_operand_checked("sigmoid_mul", {x, delta},
                               [](std::vector<Tensor>& t) { ops::sigmoid_mul(t[0], t[1]); });
  expect_every_operand_checked("sigmoid_mul_backward", {random_tensor({B, T, C}, 14), x, delta},
                               [](std::vector<Tensor>& t) { ops::sigmoid_mul_backward(t[0], t[1], t[2]); });
  expect_every_operand_checked("relu_square_backward", {random_tensor({B, T, C}, 15), x},
                               [](std::vector<Tensor>& t) { ops::relu_square_backward(t[0], t[1]); });
}

// The harness itself: host reads of the stand-in device memory really crash, so a missing check cannot pass.
TEST_F(OpDevices, StandInDeviceMemoryIsUnreadableOnTheHost) {
  const Tensor t = on_device(random_tensor({C}, 1));
  EXPECT_TRUE(t.device().is_cuda());
  EXPECT_DEATH(
      { [[maybe_unused]] volatile float first = static_cast<const volatile float*>(t.raw_data())[0]; }, "");
}

}  // namespace
}  // namespace rwkv
