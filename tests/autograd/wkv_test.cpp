// The WKV operator: gradient checks (with and without states), chunking, stress inputs, against a direct
// evaluation of the parallel definition (spec §1.5) in double precision.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "kernels/ops.h"
#include "tests/test_util.h"

namespace rwkv::ag {
namespace {

using testing::random_tensor;
using testing::relative_error;

Tensor rnd(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f) {
  return random_tensor(shape, seed, DType::f64, low, high);
}

void expect_gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs) {
  const GradcheckResult result = gradcheck(fn, inputs, {.step = 1e-6, .absolute_tolerance = 1e-8,
                                                         .relative_tolerance = 1e-6, .seed = 3});
  EXPECT_TRUE(result.passed) << "max abs " << result.max_abs_error << " max rel " << result.max_rel_error << "\n"
                             << result.report;
}

// y_t = (Σ_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) / (Σ_{i<t} e^{(t-1-i)w + k_i} + e^{u+k_t}), evaluated
// with a log-sum-exp in double precision straight from the definition.
Tensor wkv_by_definition(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v) {
  const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
  const auto td = time_decay.to_vector<double>(), u = time_first.to_vector<double>();
  const auto kv = k.to_vector<double>(), vv = v.to_vector<double>();
  std::vector<double> y(kv.size());
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      const double w = -std::exp(td[static_cast<size_t>(c)]);
      for (int64_t t = 0; t < T; ++t) {
        auto at = [&](int64_t i) { return static_cast<size_t>((b * T + i) * C + c); };
        std::vector<double> exponents;
        for (int64_t i = 0; i < t; ++i) exponents.push_back(static_cast<double>(t - 1 - i) * w + kv[at(i)]);
        exponents.push_back(u[static_cast<size_t>(c)] + kv[at(t)]);
        double peak = exponents[0];
        for (double e : exponents) peak = std::max(peak, e);
        double num = 0, den = 0;
        for (int64_t i = 0; i <= t; ++i) {
          const double weight = std::exp(exponents[static_cast<size_t>(i)] - peak);
          num += weight * vv[at(i)];
          den += weight;
        }
        y[at(t)] = num / den;
      }
    }
  }
  return Tensor::from_vector(y, k.shape());
}

TEST(AutogradWkv, ForwardMatchesTheParallelDefinition) {
  const Tensor td = rnd({5}, 1, -3, 1), tf = rnd({5}, 2), k = rnd({3, 9, 5}, 3, -2, 2), v = rnd({3, 9, 5}, 4);
  const Tensor expected = wkv_by_definition(td, tf, k, v);
  EXPECT_LT(relative_error(ops::wkv(td, tf, k, v, Tensor(), false).y, expected), 1e-12);
  // fp32 computes the same within single precision.
  const Tensor y32 = ops::wkv(td.to(DType::f32), tf.to(DType::f32), k.to(DType::f32), v.to(DType::f32), Tensor(),
                              false).y;
  EXPECT_LT(relative_error(y32, expected), 1e-5);
  // y_0 = v_0 (spec §1.5).
  EXPECT_LT(relative_error(ops::wkv(td, tf, k, v, Tensor(), false).y.slice(1, 0, 1), v.slice(1, 0, 1)), 1e-14);
}

TEST(AutogradWkv, StressInputsStayFiniteAndExact) {
  // Spec §2.9's stress settings: k up to ±40, w and u up to ±10 (w = -exp(time_decay) ∈ [-10, 0)).
  const Tensor td = rnd({7}, 5, -6, 2.302585f), tf = rnd({7}, 6, -10, 10);
  const Tensor k = rnd({2, 50, 7}, 7, -40, 40), v = rnd({2, 50, 7}, 8);
  const Tensor expected = wkv_by_definition(td, tf, k, v);
  const Tensor td32 = td.to(DType::f32), tf32 = tf.to(DType::f32), k32 = k.to(DType::f32), v32 = v.to(DType::f32);
  const ops::WkvOutput out = ops::wkv(td32, tf32, k32, v32, Tensor(), true);
  for (float value : out.y.to_vector<float>()) ASSERT_TRUE(std::isfinite(value));
  EXPECT_LT(relative_error(out.y, expected), 1e-5);
  const ops::WkvGrads grads =
      ops::wkv_backward(td32, tf32, k32, v32, out.y, random_tensor({2, 50, 7}, 9), Tensor(), Tensor());
  for (const Tensor* g : {&grads.time_decay, &grads.time_first, &grads.k, &grads.v}) {
    for (float value : g->to_vector<float>()) ASSERT_TRUE(std::isfinite(value));
  }
  // And the stress gradients agree with double precision.
  const ops::WkvOutput out64 = ops::wkv(td, tf, k, v, Tensor(), false);
  const ops::WkvGrads grads64 =
      ops::wkv_backward(td, tf, k, v, out64.y, random_tensor({2, 50, 7}, 9, DType::f64), Tensor(), Tensor());
  EXPECT_LT(relative_error(grads.k, grads64.k), 1e-4);
  EXPECT_LT(relative_error(grads.v, grads64.v), 1e-4);
  EXPECT_LT(relative_error(grads.time_first, grads64.time_first), 1e-4);
  EXPECT_LT(relative_error(grads.time_decay, grads64.time_decay), 1e-4);
}

TEST(AutogradWkv, GradcheckWithoutState) {
  expect_gradcheck([](const auto& in) { return wkv(in[0], in[1], in[2], in[3]).y; },
                   {rnd({4}, 10, -2, 1), rnd({4}, 11), rnd({2, 7, 4}, 12, -2, 2), rnd({2, 7, 4}, 13)});
  // T = 1 and a single channel.
  expect_gradcheck([](const auto& in) { return wkv(in[0], in[1], in[2], in[3]).y; },
                   {rnd({1}, 14, -2, 1), rnd({1}, 15), rnd({3, 1, 1}, 16), rnd({3, 1, 1}, 17)});
}

TEST(AutogradWkv, GradcheckThroughTheInitialState) {
  // A state (aa, bb, pp) with bb > 0, as any real state has.
  Tensor state = rnd({2, 3, 4}, 18);
  Tensor bb = rnd({2, 1, 4}, 19, 0.5f, 2.0f);
  state.slice(1, 1, 2).copy_(bb);
  expect_gradcheck([](const auto& in) { return wkv(in[0], in[1], in[2], in[3], in[4]).y; },
                   {rnd({4}, 20, -2, 1), rnd({4}, 21), rnd({2, 6, 4}, 22, -2, 2), rnd({2, 6, 4}, 23), state});
}

TEST(AutogradWkv, GradcheckThroughTheFinalStateIntoAnotherChunk) {
  // Two chunks: the second starts from the first's final state; the loss sees both chunks' outputs.
  expect_gradcheck(
      [](const auto& in) {
        const WkvResult first = wkv(in[0], in[1], in[2], in[3]);
        const WkvResult second = wkv(in[0], in[1], in[4], in[5], first.state);
        return add(first.y, second.y);
      },
      {rnd({3}, 24, -2, 1), rnd({3}, 25), rnd({2, 5, 3}, 26, -2, 2), rnd({2, 5, 3}, 27), rnd({2, 5, 3}, 28, -2, 2),
       rnd({2, 5, 3}, 29)});
}

TEST(AutogradWkv, GradcheckOfTheFinalStatesNumeratorAndDenominator) {
  // Any function of a = aa·e^pp and b = bb·e^pp gets exact gradients through the final state.
  expect_gradcheck(
      [](const auto& in) {
        const Variable state = wkv(in[0], in[1], in[2], in[3]).state;
        const Variable scale = exp(slice(state, 1, 2, 3));
        const Variable a = mul(slice(state, 1, 0, 1), scale), b = mul(slice(state, 1, 1, 2), scale);
        return add(square(a), b);
      },
      {rnd({3}, 30, -2, 1), rnd({3}, 31), rnd({2, 4, 3}, 32), rnd({2, 4, 3}, 33)});
}

TEST(AutogradWkv, ChunkedEqualsWholeSequenceForwardAndBackward) {
  const Tensor td = random_tensor({6}, 34, DType::f32, -3, 1), tf = random_tensor({6}, 35);
  const Tensor k = random_tensor({2, 12, 6}, 36, DType::f32, -3, 3), v = random_tensor({2, 12, 6}, 37);
  const Tensor gy = random_tensor({2, 12, 6}, 38);
  // Whole sequence.
  Variable td1(td.clone(), true), tf1(tf.clone(), true), k1(k.clone(), true), v1(v.clone(), true);
  const WkvResult whole = wkv(td1, tf1, k1, v1);
  whole.y.backward(gy);
  // Three chunks of 5, 4 and 3 steps, state passed along.
  Variable td2(td.clone(), true), tf2(tf.clone(), true), k2(k.clone(), true), v2(v.clone(), true);
  Variable state;
  std::vector<Variable> pieces;
  int64_t start = 0;
  for (int64_t length : {5, 4, 3}) {
    const WkvResult part = wkv(td2, tf2, slice(k2, 1, start, start + length), slice(v2, 1, start, start + length),
                               state);
    pieces.push_back(part.y);
    state = part.state;
    start += length;
  }
  for (size_t i = 0, s = 0; i < pieces.size(); s += static_cast<size_t>(pieces[i].size(1)), ++i) {
    EXPECT_LT(relative_error(pieces[i].data(), whole.y.data().slice(1, static_cast<int64_t>(s),
                                                                    static_cast<int64_t>(s) + pieces[i].size(1))),
              1e-6);
  }
  // Backward through all chunks at once (one root per chunk).
  run_backward(pieces, {gy.slice(1, 0, 5).contiguous(), gy.slice(1, 5, 9).contiguous(), gy.slice(1, 9, 12).contiguous()},
               false);
  EXPECT_LT(relative_error(k2.grad(), k1.grad()), 1e-5);
  EXPECT_LT(relative_error(v2.grad(), v1.grad()), 1e-5);
  EXPECT_LT(relative_error(td2.grad(), td1.grad()), 1e-5);
  EXPECT_LT(relative_error(tf2.grad(), tf1.grad()), 1e-5);
}

TEST(AutogradWkv, BadShapesAreClearErrors) {
  const Tensor k = random_tensor({2, 3, 4}, 39);
  EXPECT_THROW(ops::wkv(random_tensor({3}, 40), random_tensor({4}, 41), k, k, Tensor(), false), Error);
  EXPECT_THROW(ops::wkv(random_tensor({4}, 40), random_tensor({4}, 41), k, random_tensor({2, 3, 5}, 42), Tensor(),
                        false),
               Error);
  EXPECT_THROW(ops::wkv(random_tensor({4}, 40), random_tensor({4}, 41), k, k, random_tensor({2, 2, 4}, 43), false),
               Error);
}

}  // namespace
}  // namespace rwkv::ag
