// The bf16 head and loss (ag::linear_cross_entropy with bf16 features and an fp32 master weight) against the
// same computation in double precision on the rounded operands: the padded vocabulary, the chunking and the
// fp32 weight gradient must change nothing but the rounding of dlogits to bf16.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "autograd/functions.h"
#include "autograd/mixed_precision.h"
#include "tests/test_util.h"

namespace rwkv {
namespace {

using ag::Variable;
using testing::random_ids;
using testing::random_tensor;

struct HeadCase {
  int64_t vocab, chunk_rows;
  friend std::ostream& operator<<(std::ostream& out, const HeadCase& c) {
    return out << "vocab " << c.vocab << ", chunk_rows " << c.chunk_rows;
  }
};

class AutogradMixedPrecisionHead : public ::testing::TestWithParam<HeadCase> {};

TEST_P(AutogradMixedPrecisionHead, MatchesDoublePrecisionOnTheRoundedOperands) {
  const HeadCase c = GetParam();
  const int64_t batch = 2, time = 7, features = 16;
  const Tensor x16 = random_tensor({batch, time, features}, 1, DType::f32, -2, 2).to(DType::bf16);
  const Tensor w32 = random_tensor({c.vocab, features}, 2, DType::f32, -1, 1);
  const Tensor targets = random_ids({batch, time}, c.vocab, 3);

  // Reference: double precision on the operands the bf16 path actually multiplies.
  Variable rx(x16.to(DType::f64), true), rw(w32.to(DType::bf16).to(DType::f64), true);
  const Variable logits = ag::matmul(rx, rw, false, true);
  const Variable reference = ag::l2wrap(ag::cross_entropy(logits, targets), logits);
  reference.backward();

  Variable x(x16, true), w(w32, true);
  const Variable loss = ag::linear_cross_entropy(x, w, targets, c.chunk_rows);
  loss.backward();
  EXPECT_EQ(loss.data().dtype(), DType::f32);
  EXPECT_EQ(x.grad().dtype(), DType::bf16);
  EXPECT_EQ(w.grad().dtype(), DType::f32);  // straight to the fp32 master
  EXPECT_EQ(w.grad().shape(), w32.shape());
  // fp32 logits and loss: only fp32 accumulation differs.
  EXPECT_NEAR(loss.data().item(), reference.data().item(), 1e-6 * reference.data().item());
  // The gradients see dlogits rounded to bf16 (and dx rounded once more).
  EXPECT_LE(testing::norm_relative_error(x.grad(), rx.grad()), 1e-2);
  EXPECT_LE(testing::norm_relative_error(w.grad(), rw.grad()), 1e-2);
}

// 97 pads to 128 (31 masked columns), 50 to 64, 128 needs no padding; chunks of 1, 3 rows and one chunk.
INSTANTIATE_TEST_SUITE_P(Vocabularies, AutogradMixedPrecisionHead,
                         ::testing::Values(HeadCase{97, 3}, HeadCase{97, 0}, HeadCase{50, 1}, HeadCase{128, 3}),
                         [](const ::testing::TestParamInfo<HeadCase>& param_info) {
                           return "V" + std::to_string(param_info.param.vocab) + "_chunk" +
                                  std::to_string(param_info.param.chunk_rows);
                         });

TEST(AutogradMixedPrecision, LinearBf16MatchesDoublePrecisionOnTheRoundedOperands) {
  const Tensor x16 = random_tensor({3, 5, 8}, 4, DType::f32, -2, 2).to(DType::bf16);
  const Tensor w32 = random_tensor({6, 8}, 5, DType::f32, -1, 1);
  const Tensor upstream = random_tensor({3, 5, 6}, 6, DType::f32);
  Variable rx(x16.to(DType::f64), true), rw(w32.to(DType::bf16).to(DType::f64), true);
  ag::sum_all(ag::mul(ag::matmul(ag::reshape(rx, {15, 8}), rw, false, true),
                      Variable(upstream.to(DType::bf16).to(DType::f64).view({15, 6}))))
      .backward();
  Variable x(x16, true), w(w32, true);
  const Variable y = ag::linear_bf16(x, w);
  EXPECT_EQ(y.data().dtype(), DType::bf16);
  EXPECT_EQ(y.shape(), (Shape{3, 5, 6}));
  y.backward(upstream.to(DType::bf16));
  EXPECT_EQ(w.grad().dtype(), DType::f32);
  EXPECT_LE(testing::norm_relative_error(w.grad(), rw.grad()), 1e-6);  // fp32 out of bf16 operands: exact-ish
  EXPECT_LE(testing::norm_relative_error(x.grad(), rx.grad()), 1e-2);  // rounded to bf16 once
  EXPECT_THROW(ag::linear_bf16(Variable(x16.to(DType::f32)), w), Error);
  EXPECT_THROW(ag::linear_bf16(x, Variable(random_tensor({6, 9}, 7))), Error);
}

}  // namespace
}  // namespace rwkv
