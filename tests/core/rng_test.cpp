#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/rng.h"

namespace rwkv {
namespace {

TEST(CoreRng, PhiloxIsAPureFunctionOfSeedAndCounter) {
  EXPECT_EQ(philox4x32(42, 7), philox4x32(42, 7));
  EXPECT_NE(philox4x32(42, 7), philox4x32(42, 8));
  EXPECT_NE(philox4x32(42, 7), philox4x32(43, 7));
  // Known-answer test: the Random123 reference vector for Philox-4x32-10 with counter 0 and key 0.
  const auto zero = philox4x32(0, 0);
  EXPECT_EQ(zero[0], 0x6627e8d5u);
  EXPECT_EQ(zero[1], 0xe169c58du);
  EXPECT_EQ(zero[2], 0xbc57ac4cu);
  EXPECT_EQ(zero[3], 0x9b00dbd8u);
}

TEST(CoreRng, SameSeedAndOffsetGiveSameNumbers) {
  Generator a(5), b(5);
  Tensor x = Tensor::empty({1001}), y = Tensor::empty({1001});
  a.uniform_(x, -1, 1);
  b.uniform_(y, -1, 1);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  EXPECT_EQ(a.offset(), 251u);  // ceil(1001 / 4) blocks
  // A generator restored at an offset continues the same stream.
  Tensor next_a = Tensor::empty({10});
  a.uniform_(next_a, 0, 1);
  Generator restored(5, 251);
  Tensor next_b = Tensor::empty({10});
  restored.uniform_(next_b, 0, 1);
  EXPECT_EQ(next_a.to_vector<float>(), next_b.to_vector<float>());
}

TEST(CoreRng, UniformAndNormalMoments) {
  Generator g(123);
  Tensor u = Tensor::empty({200000});
  g.uniform_(u, -2, 3);
  const auto uv = u.to_vector<double>();
  double mean = std::accumulate(uv.begin(), uv.end(), 0.0) / static_cast<double>(uv.size());
  EXPECT_NEAR(mean, 0.5, 0.02);
  for (double v : uv) {
    ASSERT_GE(v, -2.0);
    ASSERT_LT(v, 3.0);
  }
  Tensor n = Tensor::empty({200000});
  g.normal_(n, 1.0f, 2.0f);
  const auto nv = n.to_vector<double>();
  mean = std::accumulate(nv.begin(), nv.end(), 0.0) / static_cast<double>(nv.size());
  double var = 0;
  for (double v : nv) var += (v - mean) * (v - mean);
  var /= static_cast<double>(nv.size());
  EXPECT_NEAR(mean, 1.0, 0.02);
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.02);
}

void expect_orthonormal_rows_or_columns(const Tensor& q, double gain) {
  const int64_t rows = q.size(0), cols = q.size(1);
  const auto v = q.to_vector<double>();
  const bool columns = rows >= cols;  // the smaller set is orthonormal
  const int64_t count = columns ? cols : rows, length = columns ? rows : cols;
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t j = 0; j < count; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < length; ++k) {
        const double a = columns ? v[static_cast<size_t>(k * cols + i)] : v[static_cast<size_t>(i * cols + k)];
        const double b = columns ? v[static_cast<size_t>(k * cols + j)] : v[static_cast<size_t>(j * cols + k)];
        dot += a * b;
      }
      ASSERT_NEAR(dot, i == j ? gain * gain : 0.0, 1e-5 * gain * gain) << i << "," << j;
    }
  }
}

TEST(CoreRng, OrthogonalInitTallWideAndGain) {
  Generator g(7);
  expect_orthonormal_rows_or_columns(orthogonal(40, 16, 1.0, g), 1.0);
  expect_orthonormal_rows_or_columns(orthogonal(16, 40, 2.0, g), 2.0);
  expect_orthonormal_rows_or_columns(orthogonal(24, 24, 0.5, g), 0.5);
  Generator g1(9), g2(9);
  EXPECT_EQ(orthogonal(8, 5, 1.0, g1).to_vector<float>(), orthogonal(8, 5, 1.0, g2).to_vector<float>());
}

TEST(CoreRng, OrthogonalFollowsTorchSignConvention) {
  // Q's columns are multiplied by sign(diag(R)), so R' = Q^T G has a positive diagonal: each column of Q has a
  // positive dot product with the matching column of the Gaussian draw it came from.
  Generator draw(11), init(11);
  Tensor gaussian = Tensor::empty({12, 5});
  draw.normal_(gaussian, 0, 1);
  const Tensor q = orthogonal(12, 5, 1.0, init);
  const auto gv = gaussian.to_vector<double>(), qv = q.to_vector<double>();
  for (int64_t j = 0; j < 5; ++j) {
    double dot = 0;
    for (int64_t i = 0; i < 12; ++i) dot += gv[static_cast<size_t>(i * 5 + j)] * qv[static_cast<size_t>(i * 5 + j)];
    EXPECT_GT(dot, 0) << "column " << j;
  }
}

}  // namespace
}  // namespace rwkv
