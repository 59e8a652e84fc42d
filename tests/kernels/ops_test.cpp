// Forward values of every CPU op against direct loops in double precision.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/ops.h"
#include "tests/test_util.h"

namespace rwkv {
namespace {

using testing::random_ids;
using testing::random_tensor;
using testing::relative_error;

TEST(KernelsCpu, MatmulAllTransposesAndBatches) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const int64_t m = 5, n = 7, k = 3, g = 2;
      Tensor a = random_tensor(ta ? Shape{g, k, m} : Shape{g, m, k}, 1);
      Tensor b = random_tensor(tb ? Shape{g, n, k} : Shape{g, k, n}, 2);
      Tensor c = ops::matmul(a, b, ta, tb);
      ASSERT_EQ(c.shape(), (Shape{g, m, n}));
      const auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
      for (int64_t gi = 0; gi < g; ++gi) {
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            double expected = 0;
            for (int64_t p = 0; p < k; ++p) {
              const double x = ta ? av[static_cast<size_t>(gi * k * m + p * m + i)]
                                  : av[static_cast<size_t>(gi * m * k + i * k + p)];
              const double y = tb ? bv[static_cast<size_t>(gi * n * k + j * k + p)]
                                  : bv[static_cast<size_t>(gi * k * n + p * n + j)];
              expected += x * y;
            }
            EXPECT_NEAR(cv[static_cast<size_t>(gi * m * n + i * n + j)], expected, 1e-5);
          }
        }
      }
      // The 2-D case and a shared 2-D B agree with the batched one.
      Tensor a0 = a.slice(0, 0, 1).squeeze(0), b0 = b.slice(0, 0, 1).squeeze(0);
      EXPECT_LT(relative_error(ops::matmul(a0, b0, ta, tb), c.slice(0, 0, 1).squeeze(0)), 1e-6);
      if (!ta) {
        Tensor shared = ops::matmul(a, b0, false, tb);
        EXPECT_LT(relative_error(shared.slice(0, 0, 1), c.slice(0, 0, 1)), 1e-6);
      }
    }
  }
}

TEST(KernelsCpu, MatmulIntoAccumulates) {
  Tensor a = random_tensor({4, 3}, 3), b = random_tensor({3, 2}, 4);
  Tensor out = ops::matmul(a, b);
  ops::matmul_into(a, b, false, false, out, 1.0);
  EXPECT_LT(relative_error(out, ops::affine(ops::matmul(a, b), 2.0, 0.0)), 1e-6);
}

TEST(KernelsCpu, BinaryBroadcastingPatterns) {
  Tensor x = random_tensor({2, 3, 4}, 5);
  Tensor m = random_tensor({1, 1, 4}, 6);
  Tensor col = random_tensor({2, 3, 1}, 7);
  const auto xv = x.to_vector<double>(), mv = m.to_vector<double>(), cv = col.to_vector<double>();
  // x * m + x * (1 - m): the time-mix pattern.
  const auto mixed = ops::binary(Binary::mul, x, m).to_vector<double>();
  const auto left = ops::binary(Binary::sub, m, x).to_vector<double>();
  const auto by_col = ops::binary(Binary::div, x, col).to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) {
    EXPECT_NEAR(mixed[i], xv[i] * mv[i % 4], 1e-6);
    EXPECT_NEAR(left[i], mv[i % 4] - xv[i], 1e-6);
    EXPECT_NEAR(by_col[i], xv[i] / cv[i / 4], 1e-5);
  }
  EXPECT_EQ(ops::binary(Binary::add, x, m).shape(), x.shape());
  EXPECT_THROW(ops::binary(Binary::add, x, random_tensor({3}, 8)), Error);
}

TEST(KernelsCpu, UnaryAndAffine) {
  Tensor x = random_tensor({100}, 9, DType::f32, -3, 3);
  const auto xv = x.to_vector<double>();
  const auto s = ops::unary(Unary::sigmoid, x).to_vector<double>();
  const auto r = ops::unary(Unary::relu, x).to_vector<double>();
  const auto e = ops::unary(Unary::exp, x).to_vector<double>();
  const auto q = ops::unary(Unary::square, x).to_vector<double>();
  const auto a = ops::affine(x, -1.0, 1.0).to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) {
    EXPECT_NEAR(s[i], 1 / (1 + std::exp(-xv[i])), 1e-6);
    EXPECT_EQ(r[i], std::max(xv[i], 0.0));
    EXPECT_NEAR(e[i], std::exp(xv[i]), 1e-5 * std::exp(xv[i]));
    EXPECT_NEAR(q[i], xv[i] * xv[i], 1e-5);
    EXPECT_NEAR(a[i], 1 - xv[i], 1e-6);
  }
}

TEST(KernelsCpu, Reductions) {
  Tensor x = random_tensor({3, 4, 5}, 10);
  const auto xv = x.to_vector<double>();
  const auto s1 = ops::sum(x, 1).to_vector<double>();
  EXPECT_EQ(ops::sum(x, 1, true).shape(), (Shape{3, 1, 5}));
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t k = 0; k < 5; ++k) {
      double expected = 0;
      for (int64_t j = 0; j < 4; ++j) expected += xv[static_cast<size_t>(i * 20 + j * 5 + k)];
      EXPECT_NEAR(s1[static_cast<size_t>(i * 5 + k)], expected, 1e-5);
    }
  }
  double total = 0;
  for (double v : xv) total += v;
  EXPECT_NEAR(ops::sum_all(x).item(), total, 1e-4);
  EXPECT_EQ(ops::sum_to_shape(x, {1, 1, 5}).shape(), (Shape{1, 1, 5}));
  EXPECT_NEAR(ops::sum_all(ops::sum_to_shape(x, {4, 1})).item(), total, 1e-4);
}

TEST(KernelsCpu, LayerNormMatchesDefinition) {
  Tensor x = random_tensor({6, 16}, 11, DType::f32, -2, 5);
  Tensor w = random_tensor({16}, 12), b = random_tensor({16}, 13);
  const auto y = ops::layernorm(x, w, b).y.to_vector<double>();
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
  for (int64_t r = 0; r < 6; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < 16; ++c) mean += xv[static_cast<size_t>(r * 16 + c)] / 16;
    for (int64_t c = 0; c < 16; ++c) var += std::pow(xv[static_cast<size_t>(r * 16 + c)] - mean, 2) / 16;
    for (int64_t c = 0; c < 16; ++c) {
      const double expected = (xv[static_cast<size_t>(r * 16 + c)] - mean) / std::sqrt(var + 1e-5) *
                                  wv[static_cast<size_t>(c)] + bv[static_cast<size_t>(c)];
      EXPECT_NEAR(y[static_cast<size_t>(r * 16 + c)], expected, 1e-5);
    }
  }
}

TEST(KernelsCpu, EmbeddingTokenShiftCrossEntropy) {
  Tensor table = random_tensor({10, 4}, 14);
  Tensor ids = Tensor::from_vector<int64_t>({3, 0, 9, 3}, {2, 2});
  Tensor e = ops::embedding(table, ids);
  EXPECT_EQ(e.shape(), (Shape{2, 2, 4}));
  EXPECT_EQ(e.slice(0, 1, 2).slice(1, 1, 2).reshape({4}).to_vector<float>(),
            table.slice(0, 3, 4).reshape({4}).to_vector<float>());

  Tensor x = random_tensor({2, 3, 4}, 15);
  const auto shifted = ops::token_shift(x).to_vector<float>();
  const auto xv = x.to_vector<float>();
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(shifted[static_cast<size_t>(b * 12 + c)], 0.0f);
    for (int64_t t = 1; t < 3; ++t) {
      for (int64_t c = 0; c < 4; ++c) {
        EXPECT_EQ(shifted[static_cast<size_t>(b * 12 + t * 4 + c)], xv[static_cast<size_t>(b * 12 + (t - 1) * 4 + c)]);
      }
    }
  }

  Tensor logits = random_tensor({2, 3, 7}, 16, DType::f32, -4, 4);
  Tensor targets = random_ids({2, 3}, 7, 17);
  const auto lv = logits.to_vector<double>();
  const auto tv = targets.to_vector<int64_t>();
  double expected = 0;
  for (int64_t r = 0; r < 6; ++r) {
    double z = 0;
    for (int64_t v = 0; v < 7; ++v) z += std::exp(lv[static_cast<size_t>(r * 7 + v)]);
    expected += std::log(z) - lv[static_cast<size_t>(r * 7 + tv[static_cast<size_t>(r)])];
  }
  EXPECT_NEAR(ops::cross_entropy(logits, targets).loss.item(), expected / 6, 1e-5);
}

TEST(KernelsCpu, OutOfRangeIdsAreErrorsNamingTheValue) {
  Tensor table = random_tensor({10, 4}, 18);
  try {
    ops::embedding(table, Tensor::from_vector<int64_t>({1, 10}, {2}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("embedding"), std::string::npos) << message;
    EXPECT_NE(message.find("10"), std::string::npos) << message;
    EXPECT_NE(message.find("position 1"), std::string::npos) << message;
  }
  EXPECT_THROW(ops::embedding(table, Tensor::from_vector<int64_t>({-1}, {1})), Error);
  EXPECT_THROW(ops::cross_entropy(random_tensor({2, 5}, 19), Tensor::from_vector<int64_t>({0, 5}, {2})), Error);
  EXPECT_THROW(ops::embedding(table, Tensor::from_vector<float>({1}, {1})), Error);
  EXPECT_THROW(ops::matmul(random_tensor({2, 3}, 20), random_tensor({4, 5}, 21)), Error);
  EXPECT_THROW(ops::binary(Binary::add, random_tensor({2}, 22), random_tensor({2}, 23, DType::f64)), Error);
  EXPECT_THROW(ops::layernorm(random_tensor({2, 3}, 24), random_tensor({4}, 25), random_tensor({4}, 26)), Error);
  EXPECT_THROW(ops::token_shift(random_tensor({2, 3}, 27)), Error);
  // An op without a bf16 kernel refuses bf16 rather than misreading it.
  EXPECT_THROW(ops::token_shift(random_tensor({2, 3, 4}, 28, DType::bf16)), Error);
}

TEST(KernelsCpu, EmbeddingBackwardIsDeterministicScatterAdd) {
  Tensor grad = random_tensor({6, 3}, 29);
  Tensor ids = Tensor::from_vector<int32_t>({2, 0, 2, 2, 1, 0}, {6});
  const auto g = ops::embedding_backward(grad, ids, 4).to_vector<double>();
  const auto gv = grad.to_vector<double>();
  const std::vector<int> idv{2, 0, 2, 2, 1, 0};
  for (int v = 0; v < 4; ++v) {
    for (int c = 0; c < 3; ++c) {
      double expected = 0;
      for (int i = 0; i < 6; ++i) expected += idv[static_cast<size_t>(i)] == v ? gv[static_cast<size_t>(i * 3 + c)] : 0;
      EXPECT_NEAR(g[static_cast<size_t>(v * 3 + c)], expected, 1e-6);
    }
  }
}

}  // namespace
}  // namespace rwkv

namespace rwkv {
namespace {

// Several tensors with their own learning rate and decay, and a clipping scale: the one-pass form must give
// exactly the per-tensor steps on scaled copies of the gradients (what the optimizer did before).
TEST(KernelsCpu, MultiTensorAdamEqualsPerTensorStepsOnScaledGradients) {
  const std::vector<Shape> shapes{{7, 5}, {40000}, {3}, {2, 3, 4}};
  for (const double scale : {1.0, 0.37}) {
    std::vector<Tensor> p_multi, m_multi, v_multi, p_one, m_one, v_one, grads;
    for (size_t i = 0; i < shapes.size(); ++i) {
      const uint64_t seed = 100 + 10 * i;
      p_multi.push_back(random_tensor(shapes[i], seed));
      m_multi.push_back(random_tensor(shapes[i], seed + 1, DType::f32, 0, 0.1f));
      v_multi.push_back(random_tensor(shapes[i], seed + 2, DType::f32, 0, 0.01f));
      grads.push_back(random_tensor(shapes[i], seed + 3));
      p_one.push_back(p_multi.back().clone());
      m_one.push_back(m_multi.back().clone());
      v_one.push_back(v_multi.back().clone());
    }
    for (int64_t step = 1; step <= 3; ++step) {
      std::vector<ops::AdamTensor> tensors;
      for (size_t i = 0; i < shapes.size(); ++i) {
        const double lr = 1e-3 * static_cast<double>(i + 1), decay = i % 2 == 0 ? 0.01 : 0.0;
        tensors.push_back({&p_multi[i], &grads[i], &m_multi[i], &v_multi[i], lr, decay});
        const Tensor grad = scale < 1.0 ? ops::affine(grads[i], scale, 0.0) : grads[i];
        ops::adam_step_(p_one[i], grad, m_one[i], v_one[i], {lr, 0.9, 0.99, 1e-8, decay, step});
      }
      ops::adam_step_(tensors, {0.9, 0.99, 1e-8, step}, scale);
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_EQ(p_multi[i].to_vector<float>(), p_one[i].to_vector<float>()) << "tensor " << i << ", scale " << scale;
      EXPECT_EQ(m_multi[i].to_vector<float>(), m_one[i].to_vector<float>()) << i;
      EXPECT_EQ(v_multi[i].to_vector<float>(), v_one[i].to_vector<float>()) << i;
    }
  }
}

TEST(KernelsCpu, MultiTensorSumOfSquaresIsTheOrderedSumOfTheParts) {
  const std::vector<Tensor> tensors{random_tensor({3, 100003}, 40), random_tensor({5}, 41),
                                    random_tensor({17, 33}, 42)};
  double expected = 0;
  for (const Tensor& t : tensors) expected += ops::sum_of_squares(t);
  EXPECT_EQ(ops::sum_of_squares(tensors), expected);
  EXPECT_EQ(ops::sum_of_squares(std::vector<Tensor>{}), 0.0);
  Tensor p = random_tensor({4}, 1), g = random_tensor({4}, 2), m = Tensor::zeros({4}), v = Tensor::zeros({4});
  Tensor wrong = Tensor::zeros({5});
  EXPECT_THROW(ops::adam_step_({{&p, &g, &m, &wrong, 1e-3, 0}}, {0.9, 0.99, 1e-8, 1}), Error);
  EXPECT_THROW(ops::adam_step_({{&p, &g, &m, &v, 1e-3, 0}}, {0.9, 0.99, 1e-8, 1}, 1.5), Error);
}

}  // namespace
}  // namespace rwkv
