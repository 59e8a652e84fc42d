// WKV on CUDA against the CPU operator in double precision on the same values, forward and backward, with and
// without the initial state and the final state's gradient, at awkward sizes (T = 1 .. 2500, odd B and C) and
// on the spec's stress inputs (k up to ±40, w and u up to ±10). Both kernel versions, fp32 and bf16 I/O.
//
// Tolerances (relative_error = max |diff| / max |reference|, per tensor):
//   fp32 results (y in fp32 I/O; gw, gu, states and their gradients always):  5e-5; stress inputs 1e-3
//     (forward y in fp32 I/O: 1e-5; stress 5e-4 — the fp32 running exponent pp accumulates rounding over T: a
//     host emulation of v1 measured 1.7e-4 at T = 2500, as the CPU's fp32 kernel does)
//   bf16 results (y, gk, gv in bf16 I/O):  5e-3 (two bf16 roundings), against the reference computed from the
//     bf16-rounded inputs; the backward of both sides uses the GPU's own bf16 y.
//   v2 against v1: the same tolerances; each version against itself: bit for bit.
#include <gtest/gtest.h>

#include "kernels/cuda/kernels.h"
#include "kernels/ops.h"
#include "tests/kernels/cuda_test_util.h"

namespace rwkv {
namespace {

using cuda_kernels::FloatIo;
using cuda_kernels::WkvVersion;
using testing::bitwise_equal;
using testing::expect_close;
using testing::f64;
using testing::on_gpu;
using testing::random_tensor;

class CudaWkv : public testing::CudaTest {};

struct WkvCase {
  int64_t batch, time, channels;
  bool stress;
  uint64_t seed;
  std::string name() const {
    return "B" + std::to_string(batch) + " T" + std::to_string(time) + " C" + std::to_string(channels) +
           (stress ? " stress" : "");
  }
};

const std::vector<WkvCase>& cases() {
  static const std::vector<WkvCase> all = {
      {1, 1, 1, false, 1},     {3, 7, 67, false, 2},   {5, 17, 3, false, 3},   {2, 1024, 64, false, 4},
      {1, 2500, 35, false, 5}, {3, 33, 67, true, 6},   {2, 1024, 64, true, 7}, {1, 2500, 35, true, 8},
  };
  return all;
}

// fp32 inputs on the CPU. The initial state is a real one: the CPU's final state after a random prefix.
struct WkvInputs {
  Tensor time_decay, time_first, k, v, grad_y, state_in, grad_state_out;
};

WkvInputs make_inputs(const WkvCase& c) {
  const uint64_t s = c.seed * 100;
  const Shape btc{c.batch, c.time, c.channels};
  WkvInputs in;
  // Stress (spec §2.9): w = -exp(time_decay) in [-10, 0), u in [-10, 10), k in [-40, 40).
  in.time_decay = c.stress ? random_tensor({c.channels}, s + 1, DType::f32, -6, 2.302585f)
                           : random_tensor({c.channels}, s + 1, DType::f32, -3, 1);
  in.time_first = random_tensor({c.channels}, s + 2, DType::f32, c.stress ? -10 : -1, c.stress ? 10 : 1);
  in.k = random_tensor(btc, s + 3, DType::f32, c.stress ? -40 : -2, c.stress ? 40 : 2);
  in.v = random_tensor(btc, s + 4);
  in.grad_y = random_tensor(btc, s + 5);
  const Tensor prefix_k = random_tensor({c.batch, 5, c.channels}, s + 6, DType::f32, -2, 2);
  const Tensor prefix_v = random_tensor({c.batch, 5, c.channels}, s + 7);
  in.state_in = ops::wkv(f64(in.time_decay), f64(in.time_first), f64(prefix_k), f64(prefix_v), Tensor(), true)
                    .state.to(DType::f32);
  in.grad_state_out = random_tensor({c.batch, 3, c.channels}, s + 8);
  return in;
}

struct Tolerances {
  double forward, fp32, bf16;
};
Tolerances tolerances(const WkvCase& c) { return c.stress ? Tolerances{5e-4, 1e-3, 5e-3} : Tolerances{1e-5, 5e-5, 5e-3}; }

// ---- through ops:: (fp32, the default kernel version), against ops:: on the CPU in double

TEST_F(CudaWkv, OpsMatchTheCpuInDoublePrecision) {
  for (const WkvCase& c : cases()) {
    const WkvInputs in = make_inputs(c);
    const Tolerances tol = tolerances(c);
    for (bool with_state : {false, true}) {
      SCOPED_TRACE(c.name() + (with_state ? " with states" : ""));
      const std::string tag = c.name() + (with_state ? " states" : "") + " ";
      const Tensor state_gpu = with_state ? on_gpu(in.state_in) : Tensor();
      const Tensor state_ref = with_state ? f64(in.state_in) : Tensor();
      const ops::WkvOutput out = ops::wkv(on_gpu(in.time_decay), on_gpu(in.time_first), on_gpu(in.k), on_gpu(in.v),
                                          state_gpu, with_state);
      const ops::WkvOutput ref = ops::wkv(f64(in.time_decay), f64(in.time_first), f64(in.k), f64(in.v), state_ref,
                                          with_state);
      expect_close(out.y, ref.y, tol.forward, tag + "y");
      if (with_state) expect_close(out.state, ref.state, tol.fp32, tag + "state_out");
      const Tensor grad_state_gpu = with_state ? on_gpu(in.grad_state_out) : Tensor();
      const Tensor grad_state_ref = with_state ? f64(in.grad_state_out) : Tensor();
      const ops::WkvGrads grads = ops::wkv_backward(on_gpu(in.time_decay), on_gpu(in.time_first), on_gpu(in.k),
                                                    on_gpu(in.v), out.y, on_gpu(in.grad_y), state_gpu, grad_state_gpu);
      const ops::WkvGrads grads_ref = ops::wkv_backward(f64(in.time_decay), f64(in.time_first), f64(in.k), f64(in.v),
                                                        f64(out.y), f64(in.grad_y), state_ref, grad_state_ref);
      expect_close(grads.k, grads_ref.k, tol.fp32, tag + "gk");
      expect_close(grads.v, grads_ref.v, tol.fp32, tag + "gv");
      expect_close(grads.time_decay, grads_ref.time_decay, tol.fp32, tag + "g time_decay");
      expect_close(grads.time_first, grads_ref.time_first, tol.fp32, tag + "g time_first");
      if (with_state) expect_close(grads.state, grads_ref.state, tol.fp32, tag + "g state_in");
    }
  }
}

// ---- each kernel version and I/O type, through cuda_kernels:: directly

struct WkvRun {
  Tensor y, state_out, gw, gu, gk, gv, grad_state_in;  // on the GPU; gw, gu per batch element
};

// Runs forward, then backward on the forward's own y. States are optional (both or neither).
WkvRun run_kernels(const WkvInputs& in, FloatIo io, WkvVersion version, bool with_state) {
  const DType dtype = io == FloatIo::f32 ? DType::f32 : DType::bf16;
  const Device gpu = Device::cuda(0);
  const int64_t batch = in.k.size(0), time = in.k.size(1), channels = in.k.size(2);
  const Tensor w = on_gpu(ops::unary(Unary::neg, ops::unary(Unary::exp, in.time_decay)));
  const Tensor u = on_gpu(in.time_first.to(dtype)), k = on_gpu(in.k.to(dtype)), v = on_gpu(in.v.to(dtype));
  const Tensor gy = on_gpu(in.grad_y.to(dtype));
  const Tensor state_in = with_state ? on_gpu(in.state_in) : Tensor();
  const Tensor grad_state_out = with_state ? on_gpu(in.grad_state_out) : Tensor();
  auto f32_or_null = [](const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
  WkvRun run;
  run.y = Tensor::empty(in.k.shape(), dtype, gpu);
  run.state_out = with_state ? Tensor::empty({batch, 3, channels}, DType::f32, gpu) : Tensor();
  cuda::set_device(0);
  cuda_kernels::wkv_forward({batch, time, channels, io, w.data<float>(), u.raw_data(), k.raw_data(), v.raw_data(),
                             f32_or_null(state_in), run.y.raw_data(), f32_or_null(run.state_out)},
                            version);
  run.gw = Tensor::empty({batch, channels}, DType::f32, gpu);
  run.gu = Tensor::empty({batch, channels}, DType::f32, gpu);
  run.gk = Tensor::empty(in.k.shape(), dtype, gpu);
  run.gv = Tensor::empty(in.k.shape(), dtype, gpu);
  run.grad_state_in = with_state ? Tensor::empty({batch, 3, channels}, DType::f32, gpu) : Tensor();
  cuda_kernels::wkv_backward({batch, time, channels, io, w.data<float>(), u.raw_data(), k.raw_data(), v.raw_data(),
                              run.y.raw_data(), gy.raw_data(), f32_or_null(state_in), f32_or_null(grad_state_out),
                              run.gw.data<float>(), run.gu.data<float>(), run.gk.raw_data(), run.gv.raw_data(),
                              with_state ? run.grad_state_in.data<float>() : nullptr},
                             version);
  return run;
}

// The CPU in double on the values the GPU saw: inputs rounded to the I/O type, and the GPU's y for the backward.
void expect_matches_reference(const WkvInputs& in, const WkvRun& run, FloatIo io, bool with_state,
                              const Tolerances& tol, const std::string& tag) {
  const DType dtype = io == FloatIo::f32 ? DType::f32 : DType::bf16;
  const double io_tolerance = io == FloatIo::f32 ? tol.fp32 : tol.bf16;
  auto rounded = [&](const Tensor& t) { return f64(t.to(dtype)); };
  const Tensor state_ref = with_state ? f64(in.state_in) : Tensor();
  const ops::WkvOutput ref = ops::wkv(f64(in.time_decay), rounded(in.time_first), rounded(in.k), rounded(in.v),
                                      state_ref, with_state);
  expect_close(run.y, ref.y, io == FloatIo::f32 ? tol.forward : tol.bf16, tag + "y");
  if (with_state) expect_close(run.state_out, ref.state, tol.fp32, tag + "state_out");
  const ops::WkvGrads grads = ops::wkv_backward(f64(in.time_decay), rounded(in.time_first), rounded(in.k),
                                                rounded(in.v), f64(run.y), rounded(in.grad_y), state_ref,
                                                with_state ? f64(in.grad_state_out) : Tensor());
  expect_close(run.gk, grads.k, io_tolerance, tag + "gk");
  expect_close(run.gv, grads.v, io_tolerance, tag + "gv");
  expect_close(ops::sum(f64(run.gw), 0), grads.time_decay, tol.fp32, tag + "gw");
  expect_close(ops::sum(f64(run.gu), 0), grads.time_first, tol.fp32, tag + "gu");
  if (with_state) expect_close(run.grad_state_in, grads.state, tol.fp32, tag + "g state_in");
}

void expect_runs_close(const WkvRun& a, const WkvRun& b, FloatIo io, const Tolerances& tol, const std::string& tag) {
  const double io_tolerance = io == FloatIo::f32 ? tol.fp32 : tol.bf16;
  expect_close(a.y, b.y, io == FloatIo::f32 ? tol.forward : tol.bf16, tag + "y");
  expect_close(a.gk, b.gk, io_tolerance, tag + "gk");
  expect_close(a.gv, b.gv, io_tolerance, tag + "gv");
  expect_close(a.gw, b.gw, tol.fp32, tag + "gw");
  expect_close(a.gu, b.gu, tol.fp32, tag + "gu");
  if (a.state_out.defined()) {
    expect_close(a.state_out, b.state_out, tol.fp32, tag + "state_out");
    expect_close(a.grad_state_in, b.grad_state_in, tol.fp32, tag + "g state_in");
  }
}

bool runs_identical(const WkvRun& a, const WkvRun& b) {
  bool same = bitwise_equal(a.y, b.y) && bitwise_equal(a.gk, b.gk) && bitwise_equal(a.gv, b.gv) &&
              bitwise_equal(a.gw, b.gw) && bitwise_equal(a.gu, b.gu);
  if (a.state_out.defined()) {
    same = same && bitwise_equal(a.state_out, b.state_out) && bitwise_equal(a.grad_state_in, b.grad_state_in);
  }
  return same;
}

void check_version(WkvVersion version) {
  for (const WkvCase& c : cases()) {
    const WkvInputs in = make_inputs(c);
    for (FloatIo io : {FloatIo::f32, FloatIo::bf16}) {
      for (bool with_state : {false, true}) {
        const std::string tag = std::string(cuda_kernels::wkv_version_name(version)) + " " +
                                (io == FloatIo::f32 ? "f32 " : "bf16 ") + c.name() + (with_state ? " states " : " ");
        SCOPED_TRACE(tag);
        const WkvRun run = run_kernels(in, io, version, with_state);
        expect_matches_reference(in, run, io, with_state, tolerances(c), tag);
        EXPECT_TRUE(runs_identical(run, run_kernels(in, io, version, with_state))) << tag << "is not deterministic";
      }
    }
  }
}

TEST_F(CudaWkv, V1MatchesTheCpuInFp32AndBf16) { check_version(WkvVersion::v1_serial); }

TEST_F(CudaWkv, V2MatchesTheCpuInFp32AndBf16) { check_version(WkvVersion::v2_chunked); }

TEST_F(CudaWkv, V2AgreesWithV1) {
  for (const WkvCase& c : cases()) {
    const WkvInputs in = make_inputs(c);
    for (FloatIo io : {FloatIo::f32, FloatIo::bf16}) {
      for (bool with_state : {false, true}) {
        const std::string tag =
            std::string("v2 vs v1 ") + (io == FloatIo::f32 ? "f32 " : "bf16 ") + c.name() + (with_state ? " states " : " ");
        SCOPED_TRACE(tag);
        expect_runs_close(run_kernels(in, io, WkvVersion::v2_chunked, with_state),
                          run_kernels(in, io, WkvVersion::v1_serial, with_state), io, tolerances(c), tag);
      }
    }
  }
}

TEST_F(CudaWkv, MismatchedStateGradientRequestIsAnError) {
  const WkvInputs in = make_inputs({1, 3, 4, false, 9});
  const Tensor w = on_gpu(in.time_decay), u = on_gpu(in.time_first), k = on_gpu(in.k), v = on_gpu(in.v);
  Tensor out = on_gpu(in.k), g = on_gpu(Tensor::zeros({1, 4}));
  cuda::set_device(0);
  EXPECT_THROW(cuda_kernels::wkv_backward({1, 3, 4, FloatIo::f32, w.data<float>(), u.raw_data(), k.raw_data(),
                                           v.raw_data(), out.raw_data(), out.raw_data(), nullptr, nullptr,
                                           g.data<float>(), g.data<float>(), out.raw_data(), out.raw_data(),
                                           g.data<float>()}),
               Error);
}

}  // namespace
}  // namespace rwkv
