// Every differentiable op's backward against central finite differences in double precision (f64 inputs,
// step 1e-6, |analytic - numeric| <= 1e-8 + 1e-6 |numeric| per element unless a test states otherwise).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "tests/test_util.h"

namespace rwkv::ag {
namespace {

using testing::random_ids;
using testing::random_tensor;

Tensor rnd(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f) {
  return random_tensor(shape, seed, DType::f64, low, high);
}

void expect_gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions options = {}) {
  const GradcheckResult result = gradcheck(fn, inputs, options);
  EXPECT_TRUE(result.passed) << "max abs error " << result.max_abs_error << ", max rel error "
                             << result.max_rel_error << "\n" << result.report;
}

TEST(AutogradGradcheck, Matmul2DAllTransposes) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans_a " << ta << " trans_b " << tb);
      expect_gradcheck([&](const auto& in) { return matmul(in[0], in[1], ta, tb); },
                       {rnd(ta ? Shape{3, 4} : Shape{4, 3}, 1), rnd(tb ? Shape{5, 3} : Shape{3, 5}, 2)});
    }
  }
}

TEST(AutogradGradcheck, MatmulBatchedAndSharedWeight) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans_a " << ta << " trans_b " << tb);
      expect_gradcheck([&](const auto& in) { return matmul(in[0], in[1], ta, tb); },
                       {rnd(ta ? Shape{2, 3, 4} : Shape{2, 4, 3}, 3), rnd(tb ? Shape{2, 5, 3} : Shape{2, 3, 5}, 4)});
    }
  }
  for (bool tb : {false, true}) {
    expect_gradcheck([&](const auto& in) { return matmul(in[0], in[1], false, tb); },
                     {rnd({2, 4, 3}, 5), rnd(tb ? Shape{5, 3} : Shape{3, 5}, 6)});
  }
}

TEST(AutogradGradcheck, BinaryOpsWithBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {1, 1, 4}}, {{1, 1, 4}, {2, 3, 4}}, {{2, 3, 4}, {3, 1}}, {{4}, {2, 3, 4}}};
  for (const auto& [sa, sb] : shapes) {
    SCOPED_TRACE(shape_str(sa) + " with " + shape_str(sb));
    expect_gradcheck([](const auto& in) { return add(in[0], in[1]); }, {rnd(sa, 7), rnd(sb, 8)});
    expect_gradcheck([](const auto& in) { return sub(in[0], in[1]); }, {rnd(sa, 9), rnd(sb, 10)});
    expect_gradcheck([](const auto& in) { return mul(in[0], in[1]); }, {rnd(sa, 11), rnd(sb, 12)});
    // Keep the divisor away from zero.
    expect_gradcheck([](const auto& in) { return div(in[0], in[1]); }, {rnd(sa, 13), rnd(sb, 14, 0.5f, 2.0f)});
  }
}

TEST(AutogradGradcheck, TimeMixPattern) {
  // x * m + xx * (1 - m) with m of shape [1, 1, C], as in every RWKV block.
  expect_gradcheck([](const auto& in) { return add(mul(in[0], in[2]), mul(in[1], rsub_scalar(1.0, in[2]))); },
                   {rnd({2, 3, 4}, 15), rnd({2, 3, 4}, 16), rnd({1, 1, 4}, 17, 0, 1)});
}

TEST(AutogradGradcheck, ScalarAndUnaryOps) {
  const Tensor x = rnd({3, 5}, 18, -2, 2);
  expect_gradcheck([](const auto& in) { return add_scalar(in[0], 0.7); }, {x});
  expect_gradcheck([](const auto& in) { return mul_scalar(in[0], -1.3); }, {x});
  expect_gradcheck([](const auto& in) { return rsub_scalar(2.0, in[0]); }, {x});
  expect_gradcheck([](const auto& in) { return neg(in[0]); }, {x});
  expect_gradcheck([](const auto& in) { return exp(in[0]); }, {x});
  expect_gradcheck([](const auto& in) { return sigmoid(in[0]); }, {x});
  expect_gradcheck([](const auto& in) { return square(in[0]); }, {x});
  // relu: inputs kept away from the kink at 0, where the derivative is undefined.
  Tensor away = rnd({3, 5}, 19, 0.1f, 2.0f);
  Tensor signs = rnd({3, 5}, 20);
  for (int64_t i = 0; i < away.numel(); ++i) {
    if (signs.data<double>()[i] < 0) away.data<double>()[i] = -away.data<double>()[i];
  }
  expect_gradcheck([](const auto& in) { return relu(in[0]); }, {away});
  expect_gradcheck([](const auto& in) { return square(relu(in[0])); }, {away});  // RWKV's squared ReLU
}

TEST(AutogradGradcheck, Reductions) {
  const Tensor x = rnd({2, 3, 4}, 21);
  for (int64_t dim : {0, 1, 2, -1}) {
    for (bool keepdim : {false, true}) {
      expect_gradcheck([&](const auto& in) { return sum(in[0], dim, keepdim); }, {x});
      expect_gradcheck([&](const auto& in) { return mean(in[0], dim, keepdim); }, {x});
    }
  }
  expect_gradcheck([](const auto& in) { return sum_all(in[0]); }, {x});
  expect_gradcheck([](const auto& in) { return mean_all(in[0]); }, {x});
}

TEST(AutogradGradcheck, Views) {
  const Tensor x = rnd({2, 3, 4}, 22);
  expect_gradcheck([](const auto& in) { return reshape(in[0], {6, 4}); }, {x});
  expect_gradcheck([](const auto& in) { return transpose(in[0], 0, 2); }, {x});
  expect_gradcheck([](const auto& in) { return slice(in[0], 1, 1, 3); }, {x});
  // Views feeding a matmul: gradients pass through strided layouts.
  expect_gradcheck([](const auto& in) { return matmul(transpose(in[0], 0, 1), in[1]); }, {rnd({3, 2}, 23), rnd({3, 4}, 24)});
}

TEST(AutogradGradcheck, LayerNorm) {
  expect_gradcheck([](const auto& in) { return layernorm(in[0], in[1], in[2]); },
                   {rnd({2, 3, 8}, 25, -2, 3), rnd({8}, 26, 0.5f, 1.5f), rnd({8}, 27)});
}

TEST(AutogradGradcheck, Embedding) {
  const Tensor ids = Tensor::from_vector<int64_t>({1, 4, 1, 0, 4, 4}, {2, 3});  // repeated ids: scatter-add
  expect_gradcheck([&](const auto& in) { return embedding(in[0], ids); }, {rnd({5, 3}, 28)});
  const Tensor ids32 = ids.to(DType::i32);
  expect_gradcheck([&](const auto& in) { return embedding(in[0], ids32); }, {rnd({5, 3}, 29)});
}

TEST(AutogradGradcheck, TokenShift) {
  expect_gradcheck([](const auto& in) { return token_shift(in[0]); }, {rnd({2, 4, 3}, 30)});
  expect_gradcheck([](const auto& in) { return token_shift(in[0]); }, {rnd({1, 1, 3}, 31)});  // T = 1
  // With the previous chunk's last vector at t = 0.
  expect_gradcheck([](const auto& in) { return token_shift(in[0], in[1]); }, {rnd({2, 4, 3}, 47), rnd({2, 3}, 48)});
}

TEST(AutogradGradcheck, CrossEntropy) {
  const Tensor targets = random_ids({2, 3}, 7, 32);
  expect_gradcheck([&](const auto& in) { return cross_entropy(in[0], targets); }, {rnd({2, 3, 7}, 33, -3, 3)});
  const Tensor targets32 = random_ids({5}, 4, 34, DType::i32);
  expect_gradcheck([&](const auto& in) { return cross_entropy(in[0], targets32); }, {rnd({5, 4}, 35, -3, 3)});
}

// L2Wrap is an identity in the forward pass, so its extra gradient is checked against finite differences of
// the penalty it stands for: P(logits) = 1e-4 / (2 N) * sum over positions of (max logit)^2.
TEST(AutogradGradcheck, L2WrapExtraGradientIsTheMaxLogitPenalty) {
  const int64_t batch = 2, time = 3, vocab = 6, positions = batch * time;
  const Tensor logits_value = rnd({batch, time, vocab}, 36, -5, 5);
  const Tensor targets = random_ids({batch, time}, vocab, 37);

  auto extra_gradient = [&](double upstream) {
    Variable with(logits_value.clone(), true), without(logits_value.clone(), true);
    l2wrap(cross_entropy(with, targets), with).backward(Tensor::full({}, upstream, DType::f64));
    cross_entropy(without, targets).backward(Tensor::full({}, upstream, DType::f64));
    const auto a = with.grad().to_vector<double>(), b = without.grad().to_vector<double>();
    std::vector<double> diff(a.size());
    for (size_t i = 0; i < a.size(); ++i) diff[i] = a[i] - b[i];
    return diff;
  };
  auto penalty = [&](const std::vector<double>& l) {
    double total = 0;
    for (int64_t p = 0; p < positions; ++p) {
      double best = l[static_cast<size_t>(p * vocab)];
      for (int64_t v = 1; v < vocab; ++v) best = std::max(best, l[static_cast<size_t>(p * vocab + v)]);
      total += best * best;
    }
    return 1e-4 / (2.0 * static_cast<double>(positions)) * total;
  };
  const std::vector<double> analytic = extra_gradient(1.0);
  std::vector<double> l = logits_value.to_vector<double>();
  for (size_t i = 0; i < l.size(); ++i) {
    const double original = l[i], step = 1e-6;
    l[i] = original + step;
    const double plus = penalty(l);
    l[i] = original - step;
    const double minus = penalty(l);
    l[i] = original;
    EXPECT_NEAR(analytic[i], (plus - minus) / (2 * step), 1e-9) << "element " << i;
  }
  // The extra gradient ignores the incoming gradient (spec §1.7): the same under a loss scale of 8.
  const std::vector<double> scaled = extra_gradient(8.0);
  for (size_t i = 0; i < l.size(); ++i) EXPECT_NEAR(scaled[i], analytic[i], 1e-12);
  // And the loss value passes through unchanged.
  Variable logits(logits_value, true);
  Variable loss = cross_entropy(logits, targets);
  EXPECT_EQ(l2wrap(loss, logits).data().item(), loss.data().item());
}

// The fused head + loss against the unfused composition l2wrap(cross_entropy(x Wᵀ), x Wᵀ) in double precision,
// for every chunking, under an upstream gradient that is not 1 (the L2Wrap part must not scale with it). The
// unfused composition is itself checked above (gradcheck of cross-entropy, the L2Wrap penalty).
TEST(AutogradGradcheck, LinearCrossEntropyEqualsTheUnfusedHeadAndLoss) {
  const int64_t batch = 2, time = 5, features = 6, vocab = 11;
  const Tensor x_value = rnd({batch, time, features}, 38, -2, 2), w_value = rnd({vocab, features}, 39, -2, 2);
  const Tensor targets = random_ids({batch, time}, vocab, 40);
  for (const double upstream : {1.0, 0.25}) {
    Variable x(x_value.clone(), true), w(w_value.clone(), true);
    const Variable logits = matmul(x, w, false, true);
    const Variable unfused = l2wrap(cross_entropy(logits, targets), logits);
    unfused.backward(Tensor::full({}, upstream, DType::f64));
    for (const int64_t chunk : {int64_t{1}, int64_t{3}, int64_t{10}, int64_t{0}}) {
      Variable fx(x_value.clone(), true), fw(w_value.clone(), true);
      const Variable fused = linear_cross_entropy(fx, fw, targets, chunk);
      EXPECT_NEAR(fused.data().item(), unfused.data().item(), 1e-14) << "chunk " << chunk;
      fused.backward(Tensor::full({}, upstream, DType::f64));
      EXPECT_EQ(fx.grad().shape(), x.grad().shape());
      EXPECT_LE(testing::relative_error(fx.grad(), x.grad()), 1e-13) << "dx, chunk " << chunk << ", " << upstream;
      EXPECT_LE(testing::relative_error(fw.grad(), w.grad()), 1e-13) << "dW, chunk " << chunk << ", " << upstream;
    }
  }
  Variable x(x_value, true), w(w_value, true);
  EXPECT_THROW(linear_cross_entropy(x, w, random_ids({batch, time + 1}, vocab, 41)), Error);
  EXPECT_THROW(linear_cross_entropy(x, Variable(rnd({vocab, features + 1}, 42, -1, 1), true), targets), Error);
}

TEST(AutogradGradcheck, ACompositeOfEverything) {
  // A miniature RWKV-style channel-mix: LN -> token-shift mix -> squared ReLU -> sigmoid gate -> logits -> CE.
  const Tensor ids = Tensor::from_vector<int64_t>({0, 3, 2, 3}, {1, 4});
  const Tensor targets = Tensor::from_vector<int64_t>({3, 2, 3, 1}, {1, 4});
  expect_gradcheck(
      [&](const auto& in) {
        Variable x = layernorm(embedding(in[0], ids), in[1], in[2]);
        Variable xx = token_shift(x);
        Variable mixed = add(mul(x, in[3]), mul(xx, rsub_scalar(1.0, in[3])));
        Variable k = square(relu(matmul(reshape(mixed, {4, 4}), in[4], false, true)));
        Variable r = sigmoid(matmul(reshape(mixed, {4, 4}), in[5], false, true));
        Variable out = mul(r, matmul(k, in[6], false, true));
        Variable logits = matmul(out, in[0], false, true);  // tied to the embedding, to share a parameter
        return cross_entropy(reshape(logits, {1, 4, 5}), targets);
      },
      {rnd({5, 4}, 40), rnd({4}, 41, 0.5f, 1.5f), rnd({4}, 42), rnd({1, 1, 4}, 43, 0, 1), rnd({8, 4}, 44),
       rnd({4, 4}, 45), rnd({4, 8}, 46)},
      {.step = 1e-6, .absolute_tolerance = 1e-8, .relative_tolerance = 1e-5, .seed = 7});
}

}  // namespace
}  // namespace rwkv::ag
