// The fused RWKV ops on the CPU: against direct double loops, against the composition of existing ops (f32, to
// rounding), bf16 against the f32 result of the same (rounded) inputs, and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/rwkv_ops.h"
#include "tests/test_util.h"

namespace rwkv {
namespace {

using testing::random_tensor;
using testing::relative_error;

constexpr double kBf16Tolerance = 2e-2;

Tensor rnd(const Shape& shape, uint64_t seed, DType dtype = DType::f32, float low = -1.0f, float high = 1.0f) {
  return random_tensor(shape, seed, dtype, low, high);
}

Tensor doubles(const std::vector<double>& values, const Shape& shape) { return Tensor::from_vector(values, shape); }

void expect_near(const Tensor& actual, const Tensor& reference, double tolerance, const char* what) {
  ASSERT_EQ(actual.shape(), reference.shape()) << what;
  EXPECT_LE(relative_error(actual, reference), tolerance) << what;
}

// ---- direct double loops ----------------------------------------------------------------------------------------

struct TimeMixCase {
  int64_t batch, time, channels;
  bool with_previous;
  int count;
};

std::vector<TimeMixCase> time_mix_cases() {
  std::vector<TimeMixCase> cases;
  for (const Shape& s : {Shape{2, 3, 5}, Shape{3, 1, 5}, Shape{2, 4, 8}, Shape{1, 6, 3}, Shape{2, 5, 70},
                          Shape{4, 64, 160}}) {  // the last one is large enough for the OpenMP paths
    for (bool with_previous : {false, true}) {
      for (int count = 1; count <= 3; ++count) cases.push_back({s[0], s[1], s[2], with_previous, count});
    }
  }
  return cases;
}

double shifted_at(const std::vector<double>& x, const std::vector<double>& previous, int64_t b, int64_t t, int64_t c,
                  int64_t time, int64_t channels) {
  if (t > 0) return x[((b * time) + t - 1) * channels + c];
  return previous.empty() ? 0.0 : previous[b * channels + c];
}

std::vector<Tensor> time_mix_reference(const Tensor& x_t, const Tensor& previous_t, const std::vector<Tensor>& mixes) {
  const int64_t batch = x_t.size(0), time = x_t.size(1), channels = x_t.size(2);
  const auto x = x_t.to_vector<double>();
  const auto previous = previous_t.defined() ? previous_t.to_vector<double>() : std::vector<double>();
  std::vector<Tensor> outs;
  for (const Tensor& mix_t : mixes) {
    const auto mix = mix_t.to_vector<double>();
    std::vector<double> out(x.size());
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < time; ++t) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t i = (b * time + t) * channels + c;
          out[i] = x[i] * mix[c] + shifted_at(x, previous, b, t, c, time, channels) * (1.0 - mix[c]);
        }
      }
    }
    outs.push_back(doubles(out, x_t.shape()));
  }
  return outs;
}

ops::TimeMixGrads time_mix_backward_reference(const std::vector<Tensor>& grads, const Tensor& x_t,
                                              const Tensor& previous_t, const std::vector<Tensor>& mixes) {
  const int64_t batch = x_t.size(0), time = x_t.size(1), channels = x_t.size(2);
  const auto x = x_t.to_vector<double>();
  const auto previous = previous_t.defined() ? previous_t.to_vector<double>() : std::vector<double>();
  std::vector<double> gx(x.size(), 0.0), gp(static_cast<size_t>(batch * channels), 0.0);
  ops::TimeMixGrads result;
  for (size_t m = 0; m < mixes.size(); ++m) {
    const auto mix = mixes[m].to_vector<double>();
    const auto g = grads[m].to_vector<double>();
    std::vector<double> gm(static_cast<size_t>(channels), 0.0);
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < time; ++t) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t i = (b * time + t) * channels + c;
          gx[i] += g[i] * mix[c];
          if (t > 0) gx[i - channels] += g[i] * (1.0 - mix[c]);
          if (t == 0) gp[b * channels + c] += g[i] * (1.0 - mix[c]);
          gm[c] += g[i] * (x[i] - shifted_at(x, previous, b, t, c, time, channels));
        }
      }
    }
    result.mixes.push_back(doubles(gm, {channels}));
  }
  result.x = doubles(gx, x_t.shape());
  if (previous_t.defined()) result.previous = doubles(gp, previous_t.shape());
  return result;
}

struct LayerNormReference {
  Tensor sum, y, grad_input, grad_weight, grad_bias;
};

// sum = x + delta, y = layernorm(sum); the gradients for grad_y (and grad_sum when defined), all in double.
LayerNormReference add_layernorm_reference(const Tensor& x_t, const Tensor& delta_t, const Tensor& weight_t,
                                           const Tensor& bias_t, double eps, const Tensor& grad_y_t,
                                           const Tensor& grad_sum_t) {
  const int64_t cols = x_t.size(-1), rows = x_t.numel() / cols;
  auto input = x_t.to_vector<double>();
  if (delta_t.defined()) {
    const auto delta = delta_t.to_vector<double>();
    for (size_t i = 0; i < input.size(); ++i) input[i] += delta[i];
  }
  const auto weight = weight_t.to_vector<double>(), bias = bias_t.to_vector<double>();
  const auto gy = grad_y_t.to_vector<double>();
  const auto gs = grad_sum_t.defined() ? grad_sum_t.to_vector<double>() : std::vector<double>(input.size(), 0.0);
  std::vector<double> y(input.size()), gx(input.size()), gw(static_cast<size_t>(cols), 0.0), gb(gw);
  for (int64_t r = 0; r < rows; ++r) {
    const double* v = input.data() + r * cols;
    double mu = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) mu += v[c] / static_cast<double>(cols);
    for (int64_t c = 0; c < cols; ++c) var += (v[c] - mu) * (v[c] - mu) / static_cast<double>(cols);
    const double inv_std = 1.0 / std::sqrt(var + eps);
    double mean_g = 0, mean_g_xhat = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (v[c] - mu) * inv_std, g = gy[r * cols + c] * weight[c];
      y[r * cols + c] = xhat * weight[c] + bias[c];
      mean_g += g / static_cast<double>(cols);
      mean_g_xhat += g * xhat / static_cast<double>(cols);
      gw[c] += gy[r * cols + c] * xhat;
      gb[c] += gy[r * cols + c];
    }
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (v[c] - mu) * inv_std, g = gy[r * cols + c] * weight[c];
      gx[r * cols + c] = inv_std * (g - mean_g - xhat * mean_g_xhat) + gs[r * cols + c];
    }
  }
  return {doubles(input, x_t.shape()), doubles(y, x_t.shape()), doubles(gx, x_t.shape()), doubles(gw, {cols}),
          doubles(gb, {cols})};
}

std::vector<Tensor> to_each(const std::vector<Tensor>& tensors, DType dtype) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) out.push_back(t.to(dtype));
  return out;
}

Tensor maybe_to(const Tensor& t, DType dtype) { return t.defined() ? t.to(dtype) : Tensor(); }

// ---- time mix ---------------------------------------------------------------------------------------------------

struct TimeMixInputs {
  Tensor x, previous;
  std::vector<Tensor> mixes, grads;
};

TimeMixInputs time_mix_inputs(const TimeMixCase& tc, DType dtype, uint64_t seed) {
  TimeMixInputs in;
  const Shape shape{tc.batch, tc.time, tc.channels};
  in.x = rnd(shape, seed, dtype);
  if (tc.with_previous) in.previous = rnd({tc.batch, tc.channels}, seed + 1, dtype);
  const DType param = dtype == DType::f64 ? DType::f64 : DType::f32;
  for (int m = 0; m < tc.count; ++m) {
    in.mixes.push_back(rnd({tc.channels}, seed + 10 + m, param, -0.2f, 1.3f));  // mixes may leave [0, 1]
    in.grads.push_back(rnd(shape, seed + 20 + m, dtype));
  }
  return in;
}

std::string describe(const TimeMixCase& tc) {
  return "B=" + std::to_string(tc.batch) + " T=" + std::to_string(tc.time) + " C=" + std::to_string(tc.channels) +
         (tc.with_previous ? " with previous" : " no previous") + ", " + std::to_string(tc.count) + " mixes";
}

TEST(KernelsRwkvFused, TimeMixMatchesDoubleLoopsInF64) {
  uint64_t seed = 100;
  for (const TimeMixCase& tc : time_mix_cases()) {
    SCOPED_TRACE(describe(tc));
    const TimeMixInputs in = time_mix_inputs(tc, DType::f64, seed += 50);
    const std::vector<Tensor> outs = ops::time_mix(in.x, in.previous, in.mixes);
    const std::vector<Tensor> want = time_mix_reference(in.x, in.previous, in.mixes);
    ASSERT_EQ(outs.size(), want.size());
    for (size_t m = 0; m < outs.size(); ++m) {
      EXPECT_EQ(outs[m].dtype(), DType::f64);
      expect_near(outs[m], want[m], 1e-14, "out");
    }
    const ops::TimeMixGrads grads = ops::time_mix_backward(in.grads, in.x, in.previous, in.mixes);
    const ops::TimeMixGrads ref = time_mix_backward_reference(in.grads, in.x, in.previous, in.mixes);
    expect_near(grads.x, ref.x, 1e-14, "grad x");
    EXPECT_EQ(grads.previous.defined(), tc.with_previous);
    if (tc.with_previous) expect_near(grads.previous, ref.previous, 1e-14, "grad previous");
    ASSERT_EQ(grads.mixes.size(), ref.mixes.size());
    for (size_t m = 0; m < grads.mixes.size(); ++m) expect_near(grads.mixes[m], ref.mixes[m], 1e-13, "grad mix");
  }
}

TEST(KernelsRwkvFused, TimeMixEqualsTokenShiftMulAddInF32) {
  uint64_t seed = 2000;
  for (const TimeMixCase& tc : time_mix_cases()) {
    SCOPED_TRACE(describe(tc));
    const TimeMixInputs in = time_mix_inputs(tc, DType::f32, seed += 50);
    const std::vector<Tensor> outs = ops::time_mix(in.x, in.previous, in.mixes);
    const Tensor shifted = ops::token_shift(in.x, in.previous);
    for (int m = 0; m < tc.count; ++m) {
      // x * mix + shifted * (1 - mix), exactly as the unfused model computes it: the same bits.
      const Tensor composed = ops::binary(
          Binary::add, ops::binary(Binary::mul, in.x, in.mixes[m]),
          ops::binary(Binary::mul, shifted, ops::affine(in.mixes[m], -1.0, 1.0)));
      EXPECT_EQ(outs[m].to_vector<float>(), composed.to_vector<float>()) << "output " << m;
    }
    // Backward through the composition: grad_x = Σ g m + shift_back(g (1 - m)), grad_mix = Σ g x - Σ g shifted.
    const ops::TimeMixGrads grads = ops::time_mix_backward(in.grads, in.x, in.previous, in.mixes);
    Tensor grad_x = Tensor::zeros(in.x.shape()), keep_sum = Tensor::zeros(in.x.shape());
    for (int m = 0; m < tc.count; ++m) {
      const Tensor keep = ops::binary(Binary::mul, in.grads[m], ops::affine(in.mixes[m], -1.0, 1.0));
      ops::accumulate_(grad_x, ops::binary(Binary::mul, in.grads[m], in.mixes[m]));
      ops::accumulate_(grad_x, ops::token_shift_backward(keep));
      ops::accumulate_(keep_sum, keep);
      const Tensor grad_mix =
          ops::binary(Binary::sub, ops::sum_to_shape(ops::binary(Binary::mul, in.grads[m], in.x), {tc.channels}),
                      ops::sum_to_shape(ops::binary(Binary::mul, in.grads[m], shifted), {tc.channels}));
      expect_near(grads.mixes[m], grad_mix, 1e-6, "grad mix");
    }
    expect_near(grads.x, grad_x, 1e-6, "grad x");
    if (tc.with_previous) expect_near(grads.previous, ops::token_shift_previous_backward(keep_sum), 1e-6, "previous");
  }
}

TEST(KernelsRwkvFused, TimeMixInBf16MatchesF32OfTheSameValues) {
  uint64_t seed = 4000;
  for (const TimeMixCase& tc : time_mix_cases()) {
    SCOPED_TRACE(describe(tc));
    const TimeMixInputs in = time_mix_inputs(tc, DType::bf16, seed += 50);
    const Tensor x32 = in.x.to(DType::f32), previous32 = maybe_to(in.previous, DType::f32);
    const std::vector<Tensor> outs = ops::time_mix(in.x, in.previous, in.mixes);
    const std::vector<Tensor> want = ops::time_mix(x32, previous32, in.mixes);
    for (size_t m = 0; m < outs.size(); ++m) {
      EXPECT_EQ(outs[m].dtype(), DType::bf16);
      expect_near(outs[m], want[m], kBf16Tolerance, "out");
    }
    const ops::TimeMixGrads grads = ops::time_mix_backward(in.grads, in.x, in.previous, in.mixes);
    const ops::TimeMixGrads ref = ops::time_mix_backward(to_each(in.grads, DType::f32), x32, previous32, in.mixes);
    EXPECT_EQ(grads.x.dtype(), DType::bf16);
    expect_near(grads.x, ref.x, kBf16Tolerance, "grad x");
    if (tc.with_previous) expect_near(grads.previous, ref.previous, kBf16Tolerance, "grad previous");
    for (size_t m = 0; m < grads.mixes.size(); ++m) {
      EXPECT_EQ(grads.mixes[m].dtype(), DType::f32);
      expect_near(grads.mixes[m], ref.mixes[m], 1e-5, "grad mix (fp32 math on the same values)");
    }
  }
}

TEST(KernelsRwkvFused, TimeMixRejectsBadArguments) {
  const Tensor x = rnd({2, 3, 4}, 1), mix = rnd({4}, 2, DType::f32, 0, 1);
  EXPECT_THROW(ops::time_mix(rnd({6, 4}, 3), Tensor(), {mix}), Error);                      // not [B, T, C]
  EXPECT_THROW(ops::time_mix(x, Tensor(), {}), Error);                                      // no mixes
  EXPECT_THROW(ops::time_mix(x, Tensor(), {mix, mix, mix, mix}), Error);                    // too many
  EXPECT_THROW(ops::time_mix(x, Tensor(), {rnd({5}, 4)}), Error);                           // wrong mix shape
  EXPECT_THROW(ops::time_mix(x, Tensor(), {rnd({4}, 5, DType::f64)}), Error);               // wrong mix dtype
  EXPECT_THROW(ops::time_mix(x, rnd({2, 5}, 6), {mix}), Error);                             // wrong previous
  EXPECT_THROW(ops::time_mix(x, rnd({2, 4}, 7, DType::bf16), {mix}), Error);                // previous dtype
  EXPECT_THROW(ops::time_mix(x.to(DType::i32), Tensor(), {mix}), Error);                    // integer x
  EXPECT_THROW(ops::time_mix_backward({rnd({2, 3, 4}, 8)}, x, Tensor(), {mix, mix}), Error);  // grad count
  EXPECT_THROW(ops::time_mix_backward({rnd({2, 3, 5}, 9)}, x, Tensor(), {mix}), Error);       // grad shape
  try {
    ops::time_mix(x, Tensor(), {rnd({5}, 10)});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("time_mix"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mix 0"), std::string::npos) << e.what();
  }
}

// ---- add + layernorm --------------------------------------------------------------------------------------------

TEST(KernelsRwkvFused, AddLayerNormMatchesDoubleLoopsInF64) {
  for (const Shape& shape : {Shape{2, 3, 5}, Shape{4, 8}, Shape{1, 1, 3}, Shape{7}}) {
    for (bool with_delta : {false, true}) {
      for (bool with_grad_sum : {false, true}) {
        if (with_grad_sum && !with_delta) continue;
        SCOPED_TRACE(shape_str(shape) + (with_delta ? " with delta" : " no delta") +
                     (with_grad_sum ? ", grad at sum" : ""));
        const int64_t cols = shape.back();
        const Tensor x = rnd(shape, 11, DType::f64, -2, 2), delta = with_delta ? rnd(shape, 12, DType::f64) : Tensor();
        const Tensor weight = rnd({cols}, 13, DType::f64, 0.5f, 1.5f), bias = rnd({cols}, 14, DType::f64);
        const Tensor grad_y = rnd(shape, 15, DType::f64);
        const Tensor grad_sum = with_grad_sum ? rnd(shape, 16, DType::f64) : Tensor();
        const ops::AddLayerNormOutput out = ops::add_layernorm(x, delta, weight, bias, 1e-5);
        const LayerNormReference ref = add_layernorm_reference(x, delta, weight, bias, 1e-5, grad_y, grad_sum);
        EXPECT_EQ(out.sum.defined(), with_delta);
        if (with_delta) expect_near(out.sum, ref.sum, 1e-15, "sum");
        expect_near(out.y, ref.y, 1e-12, "y");
        EXPECT_EQ(out.mean.dtype(), DType::f64);
        EXPECT_EQ(out.mean.shape(), Shape(shape.begin(), shape.end() - 1));
        const Tensor& input = with_delta ? out.sum : x;
        const ops::AddLayerNormGrads grads =
            ops::add_layernorm_backward(grad_sum, grad_y, input, weight, out.mean, out.rstd);
        expect_near(grads.input, ref.grad_input, 1e-11, "grad input");
        expect_near(grads.weight, ref.grad_weight, 1e-12, "grad weight");
        expect_near(grads.bias, ref.grad_bias, 1e-14, "grad bias");
      }
    }
  }
}

TEST(KernelsRwkvFused, AddLayerNormEqualsAddThenLayerNormInF32) {
  for (const Shape& shape : {Shape{2, 3, 5}, Shape{3, 64}, Shape{1, 1, 8}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t cols = shape.back();
    const Tensor x = rnd(shape, 21, DType::f32, -2, 2), delta = rnd(shape, 22);
    const Tensor weight = rnd({cols}, 23, DType::f32, 0.5f, 1.5f), bias = rnd({cols}, 24);
    const Tensor grad_y = rnd(shape, 25), grad_sum = rnd(shape, 26);
    const ops::AddLayerNormOutput out = ops::add_layernorm(x, delta, weight, bias, 1e-5);
    const Tensor sum = ops::binary(Binary::add, x, delta);
    const ops::LayerNormOutput ln = ops::layernorm(sum, weight, bias, 1e-5);
    EXPECT_EQ(out.sum.to_vector<float>(), sum.to_vector<float>());
    EXPECT_EQ(out.y.to_vector<float>(), ln.y.to_vector<float>());
    EXPECT_EQ(out.mean.to_vector<float>(), ln.mean.to_vector<float>());
    EXPECT_EQ(out.rstd.to_vector<float>(), ln.rstd.to_vector<float>());
    const ops::AddLayerNormGrads grads = ops::add_layernorm_backward(grad_sum, grad_y, out.sum, weight, out.mean,
                                                                     out.rstd);
    ops::LayerNormGrads ln_grads = ops::layernorm_backward(grad_y, sum, weight, ln.mean, ln.rstd);
    ops::accumulate_(ln_grads.x, grad_sum);
    EXPECT_EQ(grads.input.to_vector<float>(), ln_grads.x.to_vector<float>());
    EXPECT_EQ(grads.weight.to_vector<float>(), ln_grads.weight.to_vector<float>());
    EXPECT_EQ(grads.bias.to_vector<float>(), ln_grads.bias.to_vector<float>());
    // Without delta it is the plain layernorm.
    const ops::AddLayerNormOutput plain = ops::add_layernorm(x, Tensor(), weight, bias, 1e-5);
    EXPECT_EQ(plain.y.to_vector<float>(), ops::layernorm(x, weight, bias, 1e-5).y.to_vector<float>());
  }
}

TEST(KernelsRwkvFused, AddLayerNormInBf16MatchesF32OfTheSameValues) {
  for (const Shape& shape : {Shape{2, 3, 5}, Shape{4, 64}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t cols = shape.back();
    const Tensor x = rnd(shape, 31, DType::bf16, -2, 2), delta = rnd(shape, 32, DType::bf16);
    const Tensor weight = rnd({cols}, 33, DType::f32, 0.5f, 1.5f), bias = rnd({cols}, 34);
    const Tensor grad_y = rnd(shape, 35, DType::bf16), grad_sum = rnd(shape, 36, DType::bf16);
    const ops::AddLayerNormOutput out = ops::add_layernorm(x, delta, weight, bias, 1e-5);
    EXPECT_EQ(out.y.dtype(), DType::bf16);
    EXPECT_EQ(out.sum.dtype(), DType::bf16);
    EXPECT_EQ(out.mean.dtype(), DType::f32);
    // The bf16 sum is the f32 sum rounded once (to nearest even).
    const Tensor sum32 = ops::binary(Binary::add, x.to(DType::f32), delta.to(DType::f32));
    EXPECT_EQ(out.sum.to_vector<float>(), sum32.to(DType::bf16).to_vector<float>());
    const ops::AddLayerNormOutput want =
        ops::add_layernorm(x.to(DType::f32), delta.to(DType::f32), weight, bias, 1e-5);
    expect_near(out.y, want.y, kBf16Tolerance, "y");
    const ops::AddLayerNormGrads grads =
        ops::add_layernorm_backward(grad_sum, grad_y, out.sum, weight, out.mean, out.rstd);
    // Reference: the f32 backward on the same stored values.
    const ops::AddLayerNormGrads ref = ops::add_layernorm_backward(
        grad_sum.to(DType::f32), grad_y.to(DType::f32), out.sum.to(DType::f32), weight, out.mean, out.rstd);
    EXPECT_EQ(grads.input.dtype(), DType::bf16);
    expect_near(grads.input, ref.input, kBf16Tolerance, "grad input");
    expect_near(grads.weight, ref.weight, 1e-6, "grad weight");
    expect_near(grads.bias, ref.bias, 1e-6, "grad bias");
  }
}

TEST(KernelsRwkvFused, AddLayerNormRejectsBadArguments) {
  const Tensor x = rnd({2, 4}, 1), weight = rnd({4}, 2), bias = rnd({4}, 3);
  EXPECT_THROW(ops::add_layernorm(x, rnd({2, 5}, 4), weight, bias, 1e-5), Error);               // delta shape
  EXPECT_THROW(ops::add_layernorm(x, rnd({2, 4}, 5, DType::bf16), weight, bias, 1e-5), Error);  // delta dtype
  EXPECT_THROW(ops::add_layernorm(x, Tensor(), rnd({5}, 6), bias, 1e-5), Error);                // weight shape
  EXPECT_THROW(ops::add_layernorm(x, Tensor(), weight, rnd({4}, 7, DType::bf16), 1e-5), Error);  // bias dtype
  EXPECT_THROW(ops::add_layernorm(x.to(DType::bf16), Tensor(), weight.to(DType::f64), bias, 1e-5), Error);
  const ops::AddLayerNormOutput out = ops::add_layernorm(x, Tensor(), weight, bias, 1e-5);
  EXPECT_THROW(ops::add_layernorm_backward(Tensor(), rnd({2, 5}, 8), x, weight, out.mean, out.rstd), Error);
  EXPECT_THROW(ops::add_layernorm_backward(rnd({3, 4}, 9), rnd({2, 4}, 10), x, weight, out.mean, out.rstd), Error);
  EXPECT_THROW(ops::add_layernorm_backward(Tensor(), rnd({2, 4}, 11), x, weight, rnd({3}, 12), out.rstd), Error);
}

// ---- gates ------------------------------------------------------------------------------------------------------

TEST(KernelsRwkvFused, SigmoidMulAndReluSquareMatchDoubleLoopsInF64) {
  for (const Shape& shape : {Shape{2, 3, 5}, Shape{1}, Shape{4, 8}}) {
    SCOPED_TRACE(shape_str(shape));
    const Tensor gate = rnd(shape, 41, DType::f64, -3, 3), value = rnd(shape, 42, DType::f64, -2, 2);
    const Tensor grad = rnd(shape, 43, DType::f64);
    const auto g = gate.to_vector<double>(), v = value.to_vector<double>(), go = grad.to_vector<double>();
    std::vector<double> out(g.size()), dg(g.size()), dv(g.size()), sq(g.size()), dsq(g.size());
    for (size_t i = 0; i < g.size(); ++i) {
      const double s = 1.0 / (1.0 + std::exp(-g[i]));
      out[i] = s * v[i];
      dg[i] = go[i] * v[i] * s * (1 - s);
      dv[i] = go[i] * s;
      sq[i] = g[i] > 0 ? g[i] * g[i] : 0.0;
      dsq[i] = g[i] > 0 ? 2 * g[i] * go[i] : 0.0;
    }
    expect_near(ops::sigmoid_mul(gate, value), doubles(out, shape), 1e-15, "sigmoid_mul");
    const ops::SigmoidMulGrads grads = ops::sigmoid_mul_backward(grad, gate, value);
    expect_near(grads.gate, doubles(dg, shape), 1e-15, "grad gate");
    expect_near(grads.value, doubles(dv, shape), 1e-15, "grad value");
    expect_near(ops::relu_square(gate), doubles(sq, shape), 1e-15, "relu_square");
    expect_near(ops::relu_square_backward(grad, gate), doubles(dsq, shape), 1e-15, "relu_square grad");
  }
}

TEST(KernelsRwkvFused, GatesEqualTheComposedOpsInF32) {
  const Shape shape{3, 7, 5};
  const Tensor gate = rnd(shape, 51, DType::f32, -3, 3), value = rnd(shape, 52, DType::f32, -2, 2);
  const Tensor grad = rnd(shape, 53);
  const Tensor s = ops::unary(Unary::sigmoid, gate);
  EXPECT_EQ(ops::sigmoid_mul(gate, value).to_vector<float>(),
            ops::binary(Binary::mul, s, value).to_vector<float>());
  const ops::SigmoidMulGrads grads = ops::sigmoid_mul_backward(grad, gate, value);
  EXPECT_EQ(grads.value.to_vector<float>(), ops::binary(Binary::mul, grad, s).to_vector<float>());
  EXPECT_EQ(grads.gate.to_vector<float>(),
            ops::unary_backward(Unary::sigmoid, ops::binary(Binary::mul, grad, value), Tensor(), s)
                .to_vector<float>());
  const Tensor r = ops::unary(Unary::relu, gate);
  EXPECT_EQ(ops::relu_square(gate).to_vector<float>(), ops::unary(Unary::square, r).to_vector<float>());
  EXPECT_EQ(ops::relu_square_backward(grad, gate).to_vector<float>(),
            ops::unary_backward(Unary::relu, ops::unary_backward(Unary::square, grad, r, Tensor()), gate, Tensor())
                .to_vector<float>());
}

TEST(KernelsRwkvFused, GatesInBf16MatchF32OfTheSameValues) {
  const Shape shape{2, 5, 9};
  const Tensor gate = rnd(shape, 61, DType::bf16, -3, 3), value = rnd(shape, 62, DType::bf16, -2, 2);
  const Tensor grad = rnd(shape, 63, DType::bf16);
  const Tensor gate32 = gate.to(DType::f32), value32 = value.to(DType::f32), grad32 = grad.to(DType::f32);
  const Tensor out = ops::sigmoid_mul(gate, value);
  EXPECT_EQ(out.dtype(), DType::bf16);
  // One rounding of the fp32 result: exactly the f32 op's output rounded to nearest even.
  EXPECT_EQ(out.to_vector<float>(), ops::sigmoid_mul(gate32, value32).to(DType::bf16).to_vector<float>());
  const ops::SigmoidMulGrads grads = ops::sigmoid_mul_backward(grad, gate, value);
  const ops::SigmoidMulGrads ref = ops::sigmoid_mul_backward(grad32, gate32, value32);
  expect_near(grads.gate, ref.gate, kBf16Tolerance, "grad gate");
  expect_near(grads.value, ref.value, kBf16Tolerance, "grad value");
  EXPECT_EQ(ops::relu_square(gate).to_vector<float>(), ops::relu_square(gate32).to(DType::bf16).to_vector<float>());
  expect_near(ops::relu_square_backward(grad, gate), ops::relu_square_backward(grad32, gate32), kBf16Tolerance,
              "relu_square grad");
}

TEST(KernelsRwkvFused, GatesRejectBadArguments) {
  EXPECT_THROW(ops::sigmoid_mul(rnd({2, 3}, 1), rnd({3, 2}, 2)), Error);
  EXPECT_THROW(ops::sigmoid_mul(rnd({2, 3}, 3), rnd({2, 3}, 4, DType::bf16)), Error);
  EXPECT_THROW(ops::sigmoid_mul_backward(rnd({2, 4}, 5), rnd({2, 3}, 6), rnd({2, 3}, 7)), Error);
  EXPECT_THROW(ops::relu_square(Tensor::from_vector<int64_t>({1, 2}, {2})), Error);
  EXPECT_THROW(ops::relu_square_backward(rnd({3}, 8), rnd({4}, 9)), Error);
  EXPECT_THROW(ops::relu_square_backward(rnd({3}, 10, DType::f64), rnd({3}, 11)), Error);
}

}  // namespace
}  // namespace rwkv
