// bf16 in the ops on the CPU: each op on bf16 tensors equals the f32 op on the same (bf16-rounded) inputs,
// rounded once to bf16; bf16 GEMM operands accumulate in fp32 (sgemm of the rounded operands); WKV with bf16 k, v;
// the autograd cast and a small bf16 graph against its f32 twin; clear errors for mixed dtypes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "autograd/functions.h"
#include "kernels/ops.h"
#include "tests/kernels/cuda_test_util.h"

namespace rwkv {
namespace {

using testing::error_of;
using testing::expect_close;
using testing::random_tensor;
using testing::relative_error;

Tensor bf16(const Tensor& t) { return t.to(DType::bf16); }
Tensor f32(const Tensor& t) { return t.to(DType::f32); }

// Same dtype, shape and bits.
void expect_identical(const Tensor& actual, const Tensor& expected, const std::string& what) {
  EXPECT_EQ(actual.dtype(), expected.dtype()) << what;
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  EXPECT_EQ(actual.to_vector<double>(), expected.to_vector<double>()) << what;
}

// The error of bf16 values against an exact (f64) reference, in units of the reference's bf16 spacing.
double max_bf16_ulps(const Tensor& actual, const Tensor& reference) {
  const auto a = actual.to_vector<double>(), r = reference.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::abs(r[i]), 1e-30)) - 7);
    worst = std::max(worst, std::abs(a[i] - r[i]) / ulp);
  }
  return worst;
}

TEST(KernelsCpuBf16, UnaryAndBackwardAreTheRoundedF32Ops) {
  const Tensor x = bf16(random_tensor({3, 5, 7}, 1, DType::f32, -4, 4));
  const Tensor g = bf16(random_tensor({3, 5, 7}, 2, DType::f32, 0.5f, 2));
  for (Unary op : {Unary::neg, Unary::exp, Unary::sigmoid, Unary::relu, Unary::square}) {
    SCOPED_TRACE(unary_name(op));
    const Tensor y = ops::unary(op, x);
    expect_identical(y, bf16(ops::unary(op, f32(x))), "forward");
    // Rounding the exact value once: at most half a bf16 ulp, plus the fp32 math's error.
    EXPECT_LE(max_bf16_ulps(y, ops::unary(op, x.to(DType::f64))), 0.51);
    const Tensor gi = ops::unary_backward(op, g, x, y);
    expect_identical(gi, bf16(ops::unary_backward(op, f32(g), f32(x), f32(y))), "backward");
  }
}

TEST(KernelsCpuBf16, BinaryInEveryBroadcastForm) {
  const std::vector<std::pair<Shape, Shape>> shapes = {{{4, 7, 9}, {4, 7, 9}},  // equal
                                                       {{4, 7, 9}, {1, 1, 9}},  // trailing broadcast of b
                                                       {{9}, {4, 7, 9}},        // trailing broadcast of a
                                                       {{4, 7, 9}, {7, 1}},     // general (both expanded)
                                                       {{4, 1, 9}, {1, 7, 1}}};
  for (const auto& [sa, sb] : shapes) {
    const Tensor a = bf16(random_tensor(sa, 3)), b = bf16(random_tensor(sb, 4, DType::f32, 0.5f, 2.0f));
    for (Binary op : {Binary::add, Binary::sub, Binary::mul, Binary::div}) {
      SCOPED_TRACE(std::string(binary_name(op)) + " " + shape_str(sa) + " " + shape_str(sb));
      const Tensor out = ops::binary(op, a, b);
      expect_identical(out, bf16(ops::binary(op, f32(a), f32(b))), "binary");
      EXPECT_LE(max_bf16_ulps(out, ops::binary(op, a.to(DType::f64), b.to(DType::f64))), 0.51);
    }
  }
  // A non-contiguous operand is packed first.
  const Tensor t = bf16(random_tensor({9, 4}, 5)).transpose(0, 1);
  const Tensor u = bf16(random_tensor({4, 9}, 6));
  expect_identical(ops::binary(Binary::mul, t, u), bf16(ops::binary(Binary::mul, f32(t), f32(u))), "transposed");
}

TEST(KernelsCpuBf16, AffineAndAccumulate) {
  const Tensor x = bf16(random_tensor({5, 13}, 7)), y = bf16(random_tensor({5, 13}, 8));
  expect_identical(ops::affine(x, -1.5, 0.25), bf16(ops::affine(f32(x), -1.5, 0.25)), "affine");

  Tensor into = y.clone();
  ops::accumulate_(into, x);
  expect_identical(into, bf16(ops::binary(Binary::add, f32(y), f32(x))), "bf16 += bf16");

  // A bf16 gradient into an fp32 one: the fp32 sum, no rounding to bf16.
  const Tensor master = random_tensor({5, 13}, 9);
  Tensor into_f32 = master.clone();
  ops::accumulate_(into_f32, x);
  expect_identical(into_f32, ops::binary(Binary::add, master, f32(x)), "f32 += bf16");

  Tensor into_bf16 = y.clone();
  const std::string message = error_of([&] { ops::accumulate_(into_bf16, master); });
  EXPECT_NE(message.find("accumulate_"), std::string::npos) << message;
  EXPECT_NE(message.find("bf16 into f32"), std::string::npos) << message;
}

TEST(KernelsCpuBf16, SumsAccumulateInHighPrecisionAndRoundOnce) {
  const Tensor x = bf16(random_tensor({6, 70, 5}, 10));
  for (int64_t dim : {0, 1, 2}) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + (keepdim ? " keepdim" : ""));
      const Tensor s = ops::sum(x, dim, keepdim);
      expect_identical(s, bf16(ops::sum(f32(x), dim, keepdim)), "sum");
      EXPECT_LE(max_bf16_ulps(s, ops::sum(x.to(DType::f64), dim, keepdim)), 0.51);
    }
  }
  expect_identical(ops::sum_all(x), bf16(ops::sum_all(f32(x))), "sum_all");
  expect_identical(ops::sum_to_shape(x, {70, 1}), bf16(ops::sum_to_shape(f32(x), {70, 1})), "sum_to_shape");
  expect_identical(ops::sum_to_shape(x, {6, 1, 5}), bf16(ops::sum_to_shape(f32(x), {6, 1, 5})), "sum_to_shape");
  const Tensor row = bf16(random_tensor({1, 5}, 11));
  expect_identical(ops::broadcast_to(row, {3, 4, 5}), bf16(ops::broadcast_to(f32(row), {3, 4, 5})), "broadcast_to");
}

TEST(KernelsCpuBf16, MatmulIsSgemmOfTheRoundedOperands) {
  const int64_t g = 3, m = 5, n = 11, k = 7;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string(ta ? "A^T " : "A ") + (tb ? "B^T" : "B"));
      const Tensor a = bf16(random_tensor(ta ? Shape{g, k, m} : Shape{g, m, k}, 12));
      const Tensor b = bf16(random_tensor(tb ? Shape{g, n, k} : Shape{g, k, n}, 13));
      const Tensor reference = ops::matmul(f32(a), f32(b), ta, tb);
      expect_identical(ops::matmul(a, b, ta, tb, DType::f32), reference, "3-D, f32 out");
      expect_identical(ops::matmul(a, b, ta, tb), bf16(reference), "3-D, bf16 out");
      EXPECT_LT(relative_error(ops::matmul(a, b, ta, tb), ops::matmul(a.to(DType::f64), b.to(DType::f64), ta, tb)),
                1e-2);
      const Tensor a2 = a.slice(0, 1, 2).squeeze(0), b2 = b.slice(0, 1, 2).squeeze(0);
      expect_identical(ops::matmul(a2, b2, ta, tb, DType::f32), ops::matmul(f32(a2), f32(b2), ta, tb), "2-D");
      if (!ta) {
        expect_identical(ops::matmul(a, b2, false, tb, DType::bf16), bf16(ops::matmul(f32(a), f32(b2), false, tb)),
                         "shared B");
      }
    }
  }
}

TEST(KernelsCpuBf16, MatmulIntoAccumulatesInFp32) {
  const Tensor a = bf16(random_tensor({9, 6}, 14)), b = bf16(random_tensor({9, 5}, 15));
  // Weight gradients: bf16 operands into an fp32 master gradient, out = AᵀB + out.
  const Tensor start = random_tensor({6, 5}, 16);
  Tensor out = start.clone();
  ops::matmul_into(a, b, true, false, out, 1.0);
  Tensor expected = start.clone();
  ops::matmul_into(f32(a), f32(b), true, false, expected, 1.0);
  expect_identical(out, expected, "f32 out, beta 1");
  // A bf16 output: alpha·AB + beta·out in fp32, rounded once.
  const Tensor start16 = bf16(start);
  Tensor out16 = start16.clone();
  ops::matmul_into(a, b, true, false, out16, 0.5);
  Tensor expected32 = f32(start16);
  ops::matmul_into(f32(a), f32(b), true, false, expected32, 0.5);
  expect_identical(out16, bf16(expected32), "bf16 out, beta 0.5");
  // beta = 0 ignores what was in the output.
  Tensor overwritten = Tensor::full({6, 5}, std::nan(""), DType::f32);
  ops::matmul_into(a, b, true, false, overwritten, 0.0);
  expect_identical(overwritten, ops::matmul(f32(a), f32(b), true, false), "beta 0");
  // An empty inner dimension: out = beta·out.
  Tensor scaled = bf16(start);
  ops::matmul_into(Tensor::zeros({0, 6}, DType::bf16), Tensor::zeros({0, 5}, DType::bf16), true, false, scaled, 0.5);
  expect_identical(scaled, bf16(ops::affine(f32(bf16(start)), 0.5, 0.0)), "k = 0");
}

TEST(KernelsCpuBf16, MatmulDtypeErrors) {
  const Tensor a32 = random_tensor({3, 4}, 17), b32 = random_tensor({4, 2}, 18);
  const std::string mixed = error_of([&] { ops::matmul(bf16(a32), b32); });
  EXPECT_NE(mixed.find("different dtypes"), std::string::npos) << mixed;
  const std::string narrowing = error_of([&] { ops::matmul(a32, b32, false, false, DType::bf16); });
  EXPECT_NE(narrowing.find("bf16 output is not supported"), std::string::npos) << narrowing;
  Tensor out16 = Tensor::zeros({3, 2}, DType::bf16);
  EXPECT_THROW(ops::matmul_into(a32, b32, false, false, out16, 0.0), Error);
  Tensor out64 = Tensor::zeros({3, 2}, DType::f64);
  EXPECT_THROW(ops::matmul_into(bf16(a32), bf16(b32), false, false, out64, 0.0), Error);
}

TEST(KernelsCpuBf16, MixedDtypesAndUnsupportedOpsGiveClearErrors) {
  const Tensor x32 = random_tensor({2, 3}, 19), x16 = bf16(random_tensor({2, 3}, 20));
  const std::string message = error_of([&] { ops::binary(Binary::add, x32, x16); });
  EXPECT_NE(message.find("add"), std::string::npos) << message;
  EXPECT_NE(message.find("different dtypes"), std::string::npos) << message;
  EXPECT_THROW(ops::binary(Binary::mul, x16, x32.to(DType::f64)), Error);
  EXPECT_THROW(ops::unary_backward(Unary::sigmoid, x16, Tensor(), x32), Error);
  // Ops without bf16 kernels still refuse it.
  EXPECT_THROW(ops::token_shift(bf16(random_tensor({2, 3, 4}, 21))), Error);
  EXPECT_THROW(ops::unary(Unary::exp, Tensor::zeros({2}, DType::i32)), Error);
}

struct WkvInputs {
  Tensor time_decay, time_first, k, v, state;
};

WkvInputs wkv_inputs(int64_t batch, int64_t time, int64_t channels, uint64_t seed) {
  return {random_tensor({channels}, seed, DType::f32, -2, 1), random_tensor({channels}, seed + 1, DType::f32, -1, 1),
          random_tensor({batch, time, channels}, seed + 2, DType::f32, -3, 3),
          random_tensor({batch, time, channels}, seed + 3, DType::f32, -2, 2),
          random_tensor({batch, 3, channels}, seed + 4, DType::f32, 0.1f, 1)};
}

TEST(KernelsCpuBf16, WkvWithBf16KeysAndValues) {
  const int64_t batch = 2, time = 9, channels = 67;
  const WkvInputs in = wkv_inputs(batch, time, channels, 22);
  const Tensor k16 = bf16(in.k), v16 = bf16(in.v);
  const ops::WkvOutput out = ops::wkv(in.time_decay, in.time_first, k16, v16, in.state, true);
  EXPECT_EQ(out.y.dtype(), DType::bf16);
  EXPECT_EQ(out.state.dtype(), DType::f32);
  // Exactly the f32 op on the rounded k, v and u = bf16(time_first) (as the CUDA kernels read u), y rounded.
  const Tensor u_rounded = f32(bf16(in.time_first));
  const ops::WkvOutput ref = ops::wkv(in.time_decay, u_rounded, f32(k16), f32(v16), in.state, true);
  expect_identical(out.y, bf16(ref.y), "y");
  expect_identical(out.state, ref.state, "state");
  // Within bf16 tolerance of the f32 op on the unrounded inputs.
  const ops::WkvOutput full = ops::wkv(in.time_decay, in.time_first, in.k, in.v, in.state, true);
  expect_close(out.y, full.y, 2e-2, "y vs unrounded f32");
  expect_close(out.state, full.state, 2e-2, "state vs unrounded f32");

  const Tensor gy = bf16(random_tensor({batch, time, channels}, 30));
  const Tensor gs = random_tensor({batch, 3, channels}, 31);
  const ops::WkvGrads grads = ops::wkv_backward(in.time_decay, in.time_first, k16, v16, out.y, gy, in.state, gs);
  const ops::WkvGrads ref_grads =
      ops::wkv_backward(in.time_decay, u_rounded, f32(k16), f32(v16), f32(out.y), f32(gy), in.state, gs);
  EXPECT_EQ(grads.k.dtype(), DType::bf16);
  EXPECT_EQ(grads.time_decay.dtype(), DType::f32);
  expect_identical(grads.k, bf16(ref_grads.k), "gk");
  expect_identical(grads.v, bf16(ref_grads.v), "gv");
  expect_identical(grads.time_decay, ref_grads.time_decay, "gw");
  expect_identical(grads.time_first, ref_grads.time_first, "gu");
  expect_identical(grads.state, ref_grads.state, "grad state");
  const ops::WkvGrads full_grads =
      ops::wkv_backward(in.time_decay, in.time_first, in.k, in.v, full.y, f32(gy), in.state, gs);
  expect_close(grads.k, full_grads.k, 2e-2, "gk vs unrounded f32");
  expect_close(grads.v, full_grads.v, 2e-2, "gv vs unrounded f32");
  expect_close(grads.time_decay, full_grads.time_decay, 2e-2, "gw vs unrounded f32");
  expect_close(grads.time_first, full_grads.time_first, 2e-2, "gu vs unrounded f32");
}

TEST(KernelsCpuBf16, WkvParameterDtypesAreChecked) {
  const WkvInputs in = wkv_inputs(1, 3, 4, 40);
  const Tensor k16 = bf16(in.k), v16 = bf16(in.v);
  const std::string message =
      error_of([&] { ops::wkv(bf16(in.time_decay), in.time_first, k16, v16, Tensor(), false); });
  EXPECT_NE(message.find("wkv"), std::string::npos) << message;
  EXPECT_NE(message.find("must be f32"), std::string::npos) << message;
  EXPECT_THROW(ops::wkv(in.time_decay, in.time_first, k16, in.v, Tensor(), false), Error);       // k bf16, v f32
  EXPECT_THROW(ops::wkv(in.time_decay, in.time_first, k16, v16, bf16(in.state), false), Error);  // bf16 state
  EXPECT_THROW(ops::wkv(in.time_decay.to(DType::f64), in.time_first, in.k, in.v, Tensor(), false), Error);
}

TEST(AutogradBf16, CastRoundTripAndGradient) {
  const Tensor x_value = random_tensor({4, 6}, 50);
  ag::Variable x(x_value, true);
  const ag::Variable x16 = ag::cast(x, DType::bf16);
  EXPECT_EQ(x16.data().dtype(), DType::bf16);
  const ag::Variable back = ag::cast(x16, DType::f32);
  expect_identical(back.data(), f32(bf16(x_value)), "round trip");
  // d/dx sum(cast(x)²) = 2·bf16(x), computed in bf16 and converted back to f32 for the f32 leaf.
  ag::sum_all(ag::square(x16)).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  expect_identical(x.grad(), f32(ops::affine(x16.data(), 2.0, 0.0)), "gradient");
  EXPECT_THROW(ag::cast(x, DType::i32), Error);
}

TEST(AutogradBf16, VariableUsedTwiceSumsItsGradients) {
  const Tensor x_value = random_tensor({3, 5}, 51);
  ag::Variable x(x_value, true);
  const ag::Variable y = ag::cast(x, DType::bf16);
  // z = y·y + y + y: dz/dy = 2y + 2, summed over three paths into y.
  ag::sum_all(ag::add(ag::add(ag::mul(y, y), y), y)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  const Tensor expected = ops::affine(f32(y.data()), 2.0, 2.0);
  EXPECT_LE(max_bf16_ulps(x.grad(), expected.to(DType::f64)), 1.0);
}

TEST(AutogradBf16, SmallGraphMatchesItsF32Twin) {
  const Tensor x_value = random_tensor({2, 5, 8}, 52), w_value = random_tensor({8, 7}, 53),
               scale_value = random_tensor({7}, 54, DType::f32, 0.5f, 1.5f);
  auto run = [&](bool in_bf16) {
    ag::Variable x(x_value, true), w(w_value, true), scale(scale_value, true);
    auto maybe_cast = [&](const ag::Variable& v) { return in_bf16 ? ag::cast(v, DType::bf16) : v; };
    const ag::Variable h = ag::matmul(maybe_cast(x), maybe_cast(w));  // [2, 5, 7], shared 2-D weight
    const ag::Variable s = ag::sigmoid(h);
    const ag::Variable loss = ag::sum_all(ag::mul(s, maybe_cast(scale)));
    EXPECT_EQ(loss.data().dtype(), in_bf16 ? DType::bf16 : DType::f32);
    loss.backward();
    for (const ag::Variable* v : {&x, &w, &scale}) EXPECT_EQ(v->grad().dtype(), DType::f32);
    return std::vector<Tensor>{loss.data(), x.grad(), w.grad(), scale.grad()};
  };
  const std::vector<Tensor> reference = run(false), mixed = run(true);
  expect_close(mixed[0], reference[0], 1e-2, "loss");
  expect_close(mixed[1], reference[1], 1e-2, "x grad");
  expect_close(mixed[2], reference[2], 1e-2, "w grad");
  expect_close(mixed[3], reference[3], 1e-2, "scale grad");
}

TEST(AutogradBf16, Fp32OutputMatmulGivesBf16OperandGradients) {
  const Tensor a_value = random_tensor({4, 6}, 55), b_value = random_tensor({6, 3}, 56);
  ag::Variable a(a_value, true), b(b_value, true);
  const ag::Variable y = ag::matmul(ag::cast(a, DType::bf16), ag::cast(b, DType::bf16), false, false, DType::f32);
  EXPECT_EQ(y.data().dtype(), DType::f32);
  expect_identical(y.data(), ops::matmul(f32(bf16(a_value)), f32(bf16(b_value))), "forward");
  ag::sum_all(y).backward();
  // d/da sum(ab) = 1·bᵀ: each row the row sums of bf16(b), rounded to bf16.
  const Tensor row_sums = ops::sum(bf16(b_value), 1);
  const auto expected = row_sums.to_vector<double>(), got = a.grad().to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected[i % 6]) << i;
}

}  // namespace
}  // namespace rwkv
