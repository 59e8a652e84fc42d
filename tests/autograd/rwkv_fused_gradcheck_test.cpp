// Finite-difference gradient checks (f64) of the fused RWKV autograd ops, with every output and every input
// (previous, the sum output) exercised, and a check that each equals its unfused composition.
#include <gtest/gtest.h>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/rwkv_fused.h"
#include "tests/test_util.h"

namespace rwkv::ag {
namespace {

using testing::random_tensor;

Tensor rnd(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f) {
  return random_tensor(shape, seed, DType::f64, low, high);
}

void expect_gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs) {
  const GradcheckResult result = gradcheck(fn, inputs);
  EXPECT_TRUE(result.passed) << "max abs error " << result.max_abs_error << ", max rel error "
                             << result.max_rel_error << "\n" << result.report;
}

// Several outputs folded into one, nonlinearly, so that a gradient sent to the wrong output is caught.
Variable fold(const std::vector<Variable>& outs) {
  Variable result = outs[0];
  for (size_t i = 1; i < outs.size(); ++i) result = add(result, mul(outs[i], mul_scalar(outs[i - 1], 0.5 + i)));
  return result;
}

TEST(AutogradRwkvFusedGradcheck, TimeMixWithAndWithoutPrevious) {
  for (int count = 1; count <= 3; ++count) {
    for (const Shape& shape : {Shape{2, 3, 4}, Shape{2, 1, 5}}) {
      SCOPED_TRACE(::testing::Message() << count << " mixes, x " << shape_str(shape));
      std::vector<Tensor> mixes;
      for (int m = 0; m < count; ++m) mixes.push_back(rnd({shape[2]}, 10 + m, -0.2f, 1.2f));
      // Inputs: x, mixes...
      std::vector<Tensor> inputs = {rnd(shape, 1)};
      inputs.insert(inputs.end(), mixes.begin(), mixes.end());
      expect_gradcheck(
          [](const std::vector<Variable>& in) {
            return fold(time_mix(in[0], Variable(), std::vector<Variable>(in.begin() + 1, in.end())));
          },
          inputs);
      // Inputs: x, previous, mixes...
      inputs.insert(inputs.begin() + 1, rnd({shape[0], shape[2]}, 2));
      expect_gradcheck(
          [](const std::vector<Variable>& in) {
            return fold(time_mix(in[0], in[1], std::vector<Variable>(in.begin() + 2, in.end())));
          },
          inputs);
    }
  }
}

TEST(AutogradRwkvFusedGradcheck, AddLayerNormThroughSumAndY) {
  for (const Shape& shape : {Shape{2, 3, 5}, Shape{4, 6}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t cols = shape.back();
    const std::vector<Tensor> inputs = {rnd(shape, 21, -2, 2), rnd(shape, 22), rnd({cols}, 23, 0.5f, 1.5f),
                                        rnd({cols}, 24)};
    // Both outputs used: the sum's own gradient adds to the one through the norm.
    expect_gradcheck(
        [](const std::vector<Variable>& in) {
          const AddLayerNormResult r = add_layernorm(in[0], in[1], in[2], in[3]);
          return add(r.y, mul(r.sum, r.sum));
        },
        inputs);
    // Only y used (the sum receives no gradient of its own).
    expect_gradcheck(
        [](const std::vector<Variable>& in) { return add_layernorm(in[0], in[1], in[2], in[3]).y; }, inputs);
    // No delta: a plain layernorm.
    expect_gradcheck(
        [](const std::vector<Variable>& in) {
          const AddLayerNormResult r = add_layernorm(in[0], Variable(), in[1], in[2]);
          EXPECT_FALSE(r.sum.defined());
          return r.y;
        },
        {inputs[0], inputs[2], inputs[3]});
  }
}

TEST(AutogradRwkvFusedGradcheck, SigmoidMulAndReluSquare) {
  expect_gradcheck([](const std::vector<Variable>& in) { return sigmoid_mul(in[0], in[1]); },
                   {rnd({3, 5}, 31, -3, 3), rnd({3, 5}, 32, -2, 2)});
  // The same tensor as gate and value.
  expect_gradcheck([](const std::vector<Variable>& in) { return sigmoid_mul(in[0], in[0]); }, {rnd({7}, 33, -3, 3)});
  // relu_square: keep inputs away from the kink at 0 (|x| >= 0.1).
  Tensor x = rnd({4, 5}, 34, 0.1f, 2.0f);
  std::vector<double> values = x.to_vector<double>();
  for (size_t i = 0; i < values.size(); i += 2) values[i] = -values[i];
  expect_gradcheck([](const std::vector<Variable>& in) { return relu_square(in[0]); },
                   {Tensor::from_vector(values, x.shape())});
}

TEST(AutogradRwkvFused, GradientsEqualTheUnfusedComposition) {
  const Tensor x = rnd({2, 3, 4}, 41), previous = rnd({2, 4}, 42);
  const Tensor mix_k = rnd({4}, 43, 0, 1), mix_r = rnd({4}, 44, 0, 1);
  auto run = [&](bool fused) {
    Variable xv(x, true), pv(previous, true), kv(mix_k, true), rv(mix_r, true);
    std::vector<Variable> outs;
    if (fused) {
      outs = time_mix(xv, pv, {kv, rv});
    } else {
      const Variable shifted = token_shift(xv, pv);
      for (const Variable& m : {kv, rv}) outs.push_back(add(mul(xv, m), mul(shifted, rsub_scalar(1.0, m))));
    }
    const Variable gate =
        fused ? sigmoid_mul(outs[1], relu_square(outs[0])) : mul(sigmoid(outs[1]), square(relu(outs[0])));
    sum_all(gate).backward();
    return std::vector<Tensor>{xv.grad(), pv.grad(), kv.grad(), rv.grad()};
  };
  const std::vector<Tensor> fused = run(true), composed = run(false);
  for (size_t i = 0; i < fused.size(); ++i) EXPECT_LE(testing::relative_error(fused[i], composed[i]), 1e-13) << i;
}

}  // namespace
}  // namespace rwkv::ag
