// Keyed dropout (kernels/dropout.h): torch.nn.Dropout's semantics (zero with probability p, keep scaled by
// 1 / (1 − p)), a mask that is a pure function of the key and the element's global sample, its Philox bits, the
// ranks' rows together equal to one rank's, bf16, and the gradient through the same mask.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/dropout.h"
#include "autograd/gradcheck.h"
#include "core/rng.h"
#include "kernels/dropout.h"
#include "tests/test_util.h"

namespace rwkv {
namespace {

using testing::random_tensor;

TEST(KeyedDropout, DropsTheRightShareAndScalesTheRest) {
  const Tensor x = Tensor::full({8, 64, 32}, 1.0);
  const ops::DropoutKey key{0.25, 99, 0, 1};
  const std::vector<float> y = ops::keyed_dropout(x, key).to_vector<float>();
  int64_t zeros = 0;
  for (float value : y) {
    if (value == 0) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(value, 1.0f / 0.75f);
    }
  }
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(y.size()), 0.25, 0.01);
  EXPECT_EQ(ops::keyed_dropout(x, key).to_vector<float>(), y);  // deterministic
  ops::DropoutKey other = key;
  other.seed = ops::dropout_site_seed(99, 0, 1);
  EXPECT_NE(ops::keyed_dropout(x, other).to_vector<float>(), y);  // another site, another mask
  EXPECT_EQ(ops::keyed_dropout(x, {0.0, 99, 0, 1}).to_vector<float>(), x.to_vector<float>());
}

// Element e of the stream is kept when lane e % 4 of Philox block (seed, e / 4), as a 24-bit uniform, is >= p.
TEST(KeyedDropout, MaskBitsAreTheProjectsPhilox) {
  const Tensor x = Tensor::full({3, 10}, 1.0);
  const ops::DropoutKey key{0.5, 7, 5, 2};  // rows are global samples 5, 7, 9
  const std::vector<float> y = ops::keyed_dropout(x, key).to_vector<float>();
  for (uint64_t row = 0; row < 3; ++row) {
    for (uint64_t i = 0; i < 10; ++i) {
      const uint64_t element = (5 + 2 * row) * 10 + i;
      const float uniform = uniform_from_bits(philox4x32(7, element / 4)[element % 4]);
      EXPECT_EQ(y[row * 10 + i], uniform >= 0.5f ? 2.0f : 0.0f) << row << " " << i;
    }
  }
}

// Rank r of W holds global samples first + r, first + r + W, ...: the ranks' masks together are one rank's.
TEST(KeyedDropout, RanksTogetherDrawTheSingleRankMask) {
  const Tensor x = random_tensor({8, 6, 4}, 3);
  const Tensor whole = ops::keyed_dropout(x, {0.3, 11, 16, 1});
  for (int64_t rank = 0; rank < 2; ++rank) {
    Tensor rows = Tensor::empty({4, 6, 4});
    for (int64_t j = 0; j < 4; ++j) rows.slice(0, j, j + 1).copy_(x.slice(0, 2 * j + rank, 2 * j + rank + 1));
    const Tensor part = ops::keyed_dropout(rows, {0.3, 11, static_cast<uint64_t>(16 + rank), 2});
    for (int64_t j = 0; j < 4; ++j) {
      EXPECT_EQ(part.slice(0, j, j + 1).contiguous().to_vector<float>(),
                whole.slice(0, 2 * j + rank, 2 * j + rank + 1).contiguous().to_vector<float>());
    }
  }
}

TEST(KeyedDropout, Bf16KeepsTheMaskAndRoundsTheScaledValue) {
  const Tensor x = random_tensor({4, 16, 8}, 5);
  const ops::DropoutKey key{0.1, 3, 0, 1};
  const std::vector<float> from_f32 = ops::keyed_dropout(x.to(DType::bf16).to(DType::f32), key).to_vector<float>();
  const std::vector<float> from_bf16 = ops::keyed_dropout(x.to(DType::bf16), key).to(DType::f32).to_vector<float>();
  for (size_t i = 0; i < from_f32.size(); ++i) {
    EXPECT_EQ(from_bf16[i] == 0, from_f32[i] == 0) << i;
    EXPECT_NEAR(from_bf16[i], from_f32[i], std::abs(from_f32[i]) * 4e-3) << i;
  }
}

TEST(KeyedDropout, GradientCheck) {
  const ops::DropoutKey key{0.4, 21, 3, 1};
  const ag::GradcheckResult result = ag::gradcheck(
      [&](const std::vector<ag::Variable>& in) { return ag::keyed_dropout(in[0], key); },
      {random_tensor({3, 5, 4}, 8, DType::f64)});
  EXPECT_TRUE(result.passed) << result.report;
}

}  // namespace
}  // namespace rwkv
