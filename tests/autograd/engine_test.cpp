#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "autograd/checkpoint.h"
#include "autograd/functions.h"
#include "core/allocator.h"
#include "kernels/ops.h"
#include "tests/test_util.h"

namespace rwkv::ag {
namespace {

using testing::random_ids;
using testing::random_tensor;
using testing::relative_error;

TEST(AutogradEngine, DiamondGraphAccumulates) {
  Variable x(Tensor::from_vector<float>({2.0f}, {1}), true);
  Variable y = mul(x, x);        // x^2
  Variable z = add(y, mul_scalar(x, 3.0));  // x^2 + 3x, x used twice
  sum_all(mul(z, y)).backward();            // (x^2 + 3x) x^2 -> d/dx = 4x^3 + 9x^2 = 32 + 36
  EXPECT_FLOAT_EQ(x.grad().item(), 68.0f);
}

TEST(AutogradEngine, GradientsAccumulateAcrossBackwardCallsUntilZeroed) {
  Variable w(Tensor::from_vector<float>({1, 2, 3}, {3}), true);
  sum_all(mul_scalar(w, 2.0)).backward();
  sum_all(mul_scalar(w, 2.0)).backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{4, 4, 4}));
  w.zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

TEST(AutogradEngine, AccumulatedHookRunsOnceAfterAllPathsWereSummed) {
  Variable a(Tensor::from_vector<float>({2.0f}, {1}), true);
  Variable b(Tensor::from_vector<float>({3.0f}, {1}), true);
  std::vector<std::pair<char, float>> seen;  // (leaf, its gradient when the hook ran)
  a.set_grad_accumulated_hook([&] { seen.emplace_back('a', a.grad().item()); });
  b.set_grad_accumulated_hook([&] { seen.emplace_back('b', b.grad().item()); });
  Variable y = add(mul(a, a), mul(a, b));  // a used on two paths: dy/da = 2a + b = 7, dy/db = a = 2
  sum_all(mul_scalar(y, 1.0)).backward();
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& [leaf, grad] : seen) EXPECT_FLOAT_EQ(grad, leaf == 'a' ? 7.0f : 2.0f) << leaf;
  a.set_grad_accumulated_hook({});
  sum_all(a).backward();
  EXPECT_EQ(seen.size(), 2u) << "a removed hook stays silent";
  EXPECT_THROW(y.set_grad_accumulated_hook([] {}), Error) << "only leaves have hooks";
}

TEST(AutogradEngine, SavedTensorsAreFreedUnlessRetained) {
  Variable x(random_tensor({4}, 1), true);
  Variable y = sum_all(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // allowed once more: the graph was retained
  EXPECT_THROW(y.backward(), Error);  // freed now: a third pass is a clear error
}

TEST(AutogradEngine, NoGradRecordsNothing) {
  Variable x(random_tensor({3}, 2), true);
  {
    NoGradGuard no_grad;
    Variable y = exp(x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_TRUE(exp(x).requires_grad());
  EXPECT_THROW(sum_all(Variable(random_tensor({3}, 3))).backward(), Error);  // nothing requires a gradient
}

TEST(AutogradEngine, OnlyInputsThatNeedGradientsGetThem) {
  Variable a(random_tensor({2, 3}, 4), true), b(random_tensor({3, 2}, 5), false);
  sum_all(matmul(a, b)).backward();
  EXPECT_TRUE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

TEST(AutogradEngine, AddKeepsNoInputValuesAlive) {
  // add's backward needs no values, so once the caller drops the operands their memory is released even
  // though the graph lives on.
  Allocator& cpu = allocator_for(Device::cpu());
  Variable out;
  Variable weight(random_tensor({1}, 6), true);
  int64_t before = 0;
  {
    Variable big(Tensor::zeros({1 << 20}), false);
    Variable big2 = mul(big, weight);  // mul saves `big` (needed for weight's gradient) ...
    before = cpu.stats().bytes_in_use;
    out = add(big2, weight);           // ... add saves nothing of big2
  }
  // big2's 4 MiB buffer is gone; `big` is still held by mul's node. Only the output remains new.
  EXPECT_LE(cpu.stats().bytes_in_use, before);
  sum_all(out).backward();
  EXPECT_NEAR(weight.grad().item(), static_cast<float>(1 << 20), 1.0f);
}

TEST(AutogradEngine, CheckpointGivesTheSameGradientsAndKeepsLess) {
  const Tensor x_value = random_tensor({8, 16}, 7);
  const Tensor w1_value = random_tensor({32, 16}, 8), w2_value = random_tensor({16, 32}, 9);
  auto block = [](const Variable& x, const Variable& w1, const Variable& w2) {
    return add(x, matmul(square(relu(matmul(x, w1, false, true))), w2, false, true));
  };
  // Plain.
  Variable x1(x_value.clone(), true), a1(w1_value.clone(), true), b1(w2_value.clone(), true);
  sum_all(square(block(block(x1, a1, b1), a1, b1))).backward();
  // Checkpointed: the block's internals are recomputed in backward; parameters are captured.
  Variable x2(x_value.clone(), true), a2(w1_value.clone(), true), b2(w2_value.clone(), true);
  auto run = [&](const std::vector<Variable>& in) { return std::vector<Variable>{block(in[0], a2, b2)}; };
  Variable h = checkpoint(run, {x2})[0];
  Variable out = checkpoint(run, {h})[0];
  sum_all(square(out)).backward();
  EXPECT_LT(relative_error(x2.grad(), x1.grad()), 1e-6);
  EXPECT_LT(relative_error(a2.grad(), a1.grad()), 1e-6);
  EXPECT_LT(relative_error(b2.grad(), b1.grad()), 1e-6);
}

TEST(AutogradEngine, FusedHeadAndLossKeepsNoLogits) {
  Allocator& cpu = allocator_for(Device::cpu());
  const int64_t positions = 512, features = 32, vocab = 2048;  // logits: 4 MiB
  const Tensor x_value = random_tensor({positions, features}, 13), targets = random_ids({positions}, vocab, 14);
  Variable w(random_tensor({vocab, features}, 15), true);
  auto held_between_forward_and_backward = [&](bool fused) {
    Variable x(x_value.clone(), true);
    const int64_t start = cpu.stats().bytes_in_use;
    Variable loss;
    if (fused) {
      loss = linear_cross_entropy(x, w, targets, /*chunk_rows=*/64);
    } else {
      const Variable logits = matmul(x, w, false, true);
      loss = l2wrap(cross_entropy(logits, targets), logits);
    }
    const int64_t held = cpu.stats().bytes_in_use - start;
    loss.backward();
    w.zero_grad();
    return held;
  };
  const int64_t unfused = held_between_forward_and_backward(false);
  const int64_t fused = held_between_forward_and_backward(true);
  // Between forward and backward the plain composition keeps the [512, 2048] logits; the fused loss keeps x's
  // logsumexp only (x itself is the caller's).
  EXPECT_GT(unfused, int64_t{4} << 20) << unfused;
  EXPECT_LT(fused, int64_t{64} << 10) << fused;
}

// The targets are checked once over the whole batch (one host read on a GPU, not one per chunk), and an id
// outside the vocabulary in a later chunk is still refused, named with its position in the batch.
TEST(AutogradEngine, FusedHeadAndLossChecksTheTargetsOnceWithTheirPositions) {
  const int64_t positions = 14, features = 8, vocab = 5;
  Variable x(random_tensor({positions, features}, 1), true), w(random_tensor({vocab, features}, 2), true);
  Tensor targets = random_ids({positions}, vocab, 3);
  const Variable fine = linear_cross_entropy(x, w, targets, /*chunk_rows=*/3);
  EXPECT_TRUE(std::isfinite(fine.data().item()));
  targets.data<int64_t>()[10] = vocab;  // in the fourth chunk of three rows
  try {
    linear_cross_entropy(x, w, targets, 3);
    FAIL() << "a target >= vocab was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linear_cross_entropy: target 5 at position 10 is out of range [0, 5)"),
              std::string::npos)
        << e.what();
  }
  targets.data<int64_t>()[10] = -1;
  EXPECT_THROW(linear_cross_entropy(x, w, targets, 3), Error);
  // The plain op still checks its own targets unless told they were checked.
  const Tensor logits = random_tensor({positions, vocab}, 4);
  EXPECT_THROW(ops::cross_entropy(logits, targets), Error);
  targets.data<int64_t>()[10] = 2;
  EXPECT_NO_THROW(ops::cross_entropy(logits, targets, ops::IdCheck::done));
}

TEST(AutogradEngine, CheckpointSavesActivationMemory) {
  Allocator& cpu = allocator_for(Device::cpu());
  const Tensor x_value = random_tensor({256, 64}, 10);
  Variable w1(random_tensor({1024, 64}, 11), true), w2(random_tensor({64, 1024}, 12), true);
  auto block = [&](const std::vector<Variable>& in) {
    return std::vector<Variable>{add(in[0], matmul(square(relu(matmul(in[0], w1, false, true))), w2, false, true))};
  };
  auto graph_bytes = [&](bool use_checkpoint) {
    const int64_t start = cpu.stats().bytes_in_use;
    Variable x(x_value.clone(), true);
    Variable out = use_checkpoint ? checkpoint(block, {x})[0] : block({x})[0];
    const int64_t held = cpu.stats().bytes_in_use - start;
    sum_all(out).backward();
    return held;
  };
  const int64_t plain = graph_bytes(false), checkpointed = graph_bytes(true);
  // The plain graph keeps three [256, 1024] hidden activations (~1 MiB each); the checkpoint keeps none.
  EXPECT_GT(plain, checkpointed + (2 << 20)) << "plain " << plain << " bytes, checkpointed " << checkpointed;
}

}  // namespace
}  // namespace rwkv::ag
