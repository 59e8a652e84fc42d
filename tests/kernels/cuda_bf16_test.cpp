// bf16 ops on CUDA against the CPU's bf16 ops on the same random non-zero values at odd sizes (skipped without a
// GPU). Tolerances:
//   elementwise ops and sums: within 1 bf16 ulp of the CPU (both compute in fp32, or sum in double, and round
//     once; the GPU's expf, or an fma where the CPU multiplies and adds, may move a result across a rounding
//     boundary);
//   GEMM with bf16 operands: 1e-2 relative for a bf16 output (fp32 accumulation in another order, then one bf16
//     rounding on each side), 1e-5 for an f32 output;
//   WKV: 5e-3 for the bf16 y, gk, gv; 5e-5 for the fp32 state, gw, gu and state gradient.
//   padded bf16 head + loss: 1e-5 for the fp32 loss, 1e-2 for the gradients (dlogits rounded to bf16).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "autograd/functions.h"
#include "kernels/ops.h"
#include "tests/kernels/cuda_test_util.h"

namespace rwkv {
namespace {

using testing::expect_close;
using testing::on_gpu;
using testing::random_tensor;

class CudaBf16 : public testing::CudaTest {};

Tensor bf16(const Tensor& t) { return t.to(DType::bf16); }

// Largest distance, in bf16 ulps, between two bf16 tensors of one shape (0 when bit-identical).
int64_t max_ulps_apart(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dtype(), DType::bf16);
  EXPECT_EQ(b.dtype(), DType::bf16);
  EXPECT_EQ(a.shape(), b.shape());
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  // bf16 values as ordered integers: the bf16 bits are the high half of the float's bits.
  auto ordered = [](float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    const int64_t magnitude = static_cast<int64_t>((bits >> 16) & 0x7fffu);
    return (bits >> 31) ? -magnitude : magnitude;
  };
  int64_t worst = 0;
  for (size_t i = 0; i < av.size() && i < bv.size(); ++i) {
    worst = std::max<int64_t>(worst, std::abs(ordered(av[i]) - ordered(bv[i])));
  }
  return worst;
}

void expect_within_one_ulp(const Tensor& gpu, const Tensor& cpu, const std::string& what) {
  ASSERT_TRUE(gpu.device().is_cuda()) << what;
  EXPECT_LE(max_ulps_apart(gpu.to(Device::cpu()), cpu), 1) << what;
}

TEST_F(CudaBf16, UnaryAndBackward) {
  const Tensor x = bf16(random_tensor({3, 5, 71}, 1, DType::f32, -4, 4));
  const Tensor g = bf16(random_tensor({3, 5, 71}, 2));
  for (Unary op : {Unary::neg, Unary::exp, Unary::sigmoid, Unary::relu, Unary::square}) {
    SCOPED_TRACE(unary_name(op));
    const Tensor y_cpu = ops::unary(op, x), y_gpu = ops::unary(op, on_gpu(x));
    expect_within_one_ulp(y_gpu, y_cpu, "forward");
    // The same saved output on both sides, so that only the backward's arithmetic is compared.
    expect_within_one_ulp(ops::unary_backward(op, on_gpu(g), on_gpu(x), on_gpu(y_cpu)),
                          ops::unary_backward(op, g, x, y_cpu), "backward");
  }
}

TEST_F(CudaBf16, BinaryInEveryBroadcastForm) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{4, 33, 65}, {4, 33, 65}}, {{4, 33, 65}, {1, 1, 65}}, {{65}, {4, 33, 65}}, {{4, 33, 65}, {33, 1}},
      {{4, 1, 65}, {1, 33, 1}}};
  for (const auto& [sa, sb] : shapes) {
    const Tensor a = bf16(random_tensor(sa, 3)), b = bf16(random_tensor(sb, 4, DType::f32, 0.5f, 2.0f));
    for (Binary op : {Binary::add, Binary::sub, Binary::mul, Binary::div}) {
      SCOPED_TRACE(std::string(binary_name(op)) + " " + shape_str(sa) + " " + shape_str(sb));
      expect_within_one_ulp(ops::binary(op, on_gpu(a), on_gpu(b)), ops::binary(op, a, b), "binary");
    }
  }
}

TEST_F(CudaBf16, AffineAndAccumulate) {
  const Tensor x = bf16(random_tensor({1001}, 5)), y = bf16(random_tensor({1001}, 6));
  expect_within_one_ulp(ops::affine(on_gpu(x), -1.5, 0.25), ops::affine(x, -1.5, 0.25), "affine");
  Tensor into_cpu = y.clone(), into_gpu = on_gpu(y);
  ops::accumulate_(into_cpu, x);
  ops::accumulate_(into_gpu, on_gpu(x));
  expect_within_one_ulp(into_gpu, into_cpu, "bf16 += bf16");
  // bf16 into f32: one fp32 addition on both sides, bit for bit.
  const Tensor master = random_tensor({1001}, 7);
  Tensor master_cpu = master.clone(), master_gpu = on_gpu(master);
  ops::accumulate_(master_cpu, x);
  ops::accumulate_(master_gpu, on_gpu(x));
  EXPECT_EQ(master_gpu.dtype(), DType::f32);
  EXPECT_TRUE(testing::bitwise_equal(master_gpu, master_cpu));
  Tensor narrow = on_gpu(y);
  EXPECT_THROW(ops::accumulate_(narrow, on_gpu(master)), Error);
}

TEST_F(CudaBf16, SumsSumToShapeAndBroadcast) {
  const Tensor x = bf16(random_tensor({5, 613, 37}, 8));
  for (int64_t dim : {0, 1, 2}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    expect_within_one_ulp(ops::sum(on_gpu(x), dim, false), ops::sum(x, dim, false), "sum");
  }
  expect_within_one_ulp(ops::sum_all(on_gpu(x)), ops::sum_all(x), "sum_all");
  const Tensor long_row = bf16(random_tensor({3, 40001}, 9));  // several ordered partials per row
  expect_within_one_ulp(ops::sum(on_gpu(long_row), 1), ops::sum(long_row, 1), "long rows");
  expect_within_one_ulp(ops::sum_to_shape(on_gpu(x), {613, 1}), ops::sum_to_shape(x, {613, 1}), "sum_to_shape");
  const Tensor row = bf16(random_tensor({1, 37}, 10));
  EXPECT_TRUE(
      testing::bitwise_equal(ops::broadcast_to(on_gpu(row), {3, 5, 37}), ops::broadcast_to(row, {3, 5, 37})));
}

TEST_F(CudaBf16, MatmulEveryTransposeBatchAndSharedB) {
  const int64_t m = 37, n = 53, k = 19, g = 3;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string("trans_a ") + (ta ? "1" : "0") + " trans_b " + (tb ? "1" : "0"));
      const Tensor a = bf16(random_tensor(ta ? Shape{g, k, m} : Shape{g, m, k}, 11));
      const Tensor b = bf16(random_tensor(tb ? Shape{g, n, k} : Shape{g, k, n}, 12));
      const Tensor out16 = ops::matmul(on_gpu(a), on_gpu(b), ta, tb);
      EXPECT_EQ(out16.dtype(), DType::bf16);
      expect_close(out16, ops::matmul(a, b, ta, tb), 1e-2, "batched, bf16 out");
      expect_close(ops::matmul(on_gpu(a), on_gpu(b), ta, tb, DType::f32), ops::matmul(a, b, ta, tb, DType::f32),
                   1e-5, "batched, f32 out");
      const Tensor a2 = a.slice(0, 2, 3).squeeze(0), b2 = b.slice(0, 2, 3).squeeze(0);
      expect_close(ops::matmul(on_gpu(a2), on_gpu(b2), ta, tb, DType::f32), ops::matmul(a2, b2, ta, tb, DType::f32),
                   1e-5, "2-D, f32 out");
      if (!ta) {
        expect_close(ops::matmul(on_gpu(a), on_gpu(b2), false, tb), ops::matmul(a, b2, false, tb), 1e-2,
                     "shared B, bf16 out");
        expect_close(ops::matmul(on_gpu(a), on_gpu(b2), false, tb, DType::f32),
                     ops::matmul(a, b2, false, tb, DType::f32), 1e-5, "shared B, f32 out");
      }
    }
  }
}

TEST_F(CudaBf16, MatmulIntoWithBetaAndEmptyInnerDimension) {
  const Tensor a = bf16(random_tensor({301, 45}, 13)), b = bf16(random_tensor({301, 29}, 14));
  const Tensor start = random_tensor({45, 29}, 15);
  // Weight gradient: bf16 operands accumulated into an fp32 master gradient.
  Tensor out_cpu = start.clone(), out_gpu = on_gpu(start);
  ops::matmul_into(a, b, true, false, out_cpu, 1.0);
  ops::matmul_into(on_gpu(a), on_gpu(b), true, false, out_gpu, 1.0);
  EXPECT_EQ(out_gpu.dtype(), DType::f32);
  expect_close(out_gpu, out_cpu, 1e-5, "f32 out, beta 1");
  // A bf16 output with beta: fp32 alpha·AB + beta·C, rounded once.
  Tensor out16_cpu = bf16(start), out16_gpu = on_gpu(bf16(start));
  ops::matmul_into(a, b, true, false, out16_cpu, 0.5);
  ops::matmul_into(on_gpu(a), on_gpu(b), true, false, out16_gpu, 0.5);
  expect_close(out16_gpu, out16_cpu, 1e-2, "bf16 out, beta 0.5");
  // k = 0: C = beta·C in C's dtype.
  const Tensor empty_a = Tensor::zeros({0, 45}, DType::bf16), empty_b = Tensor::zeros({0, 29}, DType::bf16);
  Tensor scaled_cpu = bf16(start), scaled_gpu = on_gpu(bf16(start));
  ops::matmul_into(empty_a, empty_b, true, false, scaled_cpu, 0.5);
  ops::matmul_into(on_gpu(empty_a), on_gpu(empty_b), true, false, scaled_gpu, 0.5);
  EXPECT_TRUE(testing::bitwise_equal(scaled_gpu, scaled_cpu));
  Tensor scaled32 = on_gpu(start);
  ops::matmul_into(on_gpu(empty_a), on_gpu(empty_b), true, false, scaled32, 0.5);
  EXPECT_TRUE(testing::bitwise_equal(scaled32, ops::affine(start, 0.5, 0.0)));
}

TEST_F(CudaBf16, MatmulDtypeErrors) {
  const Tensor a = on_gpu(random_tensor({3, 4}, 16)), b = on_gpu(random_tensor({4, 2}, 17));
  EXPECT_THROW(ops::matmul(bf16(a), b), Error);
  EXPECT_THROW(ops::matmul(a, b, false, false, DType::bf16), Error);
  EXPECT_THROW(ops::binary(Binary::add, a, bf16(a)), Error);
}

TEST_F(CudaBf16, WkvMatchesTheCpuBf16Op) {
  const int64_t batch = 3, time = 37, channels = 129;
  const Tensor time_decay = random_tensor({channels}, 20, DType::f32, -2, 1);
  const Tensor time_first = random_tensor({channels}, 21, DType::f32, -1, 1);
  const Tensor k = bf16(random_tensor({batch, time, channels}, 22, DType::f32, -3, 3));
  const Tensor v = bf16(random_tensor({batch, time, channels}, 23, DType::f32, -2, 2));
  const Tensor state = random_tensor({batch, 3, channels}, 24, DType::f32, 0.1f, 1);
  const ops::WkvOutput cpu = ops::wkv(time_decay, time_first, k, v, state, true);
  const ops::WkvOutput gpu =
      ops::wkv(on_gpu(time_decay), on_gpu(time_first), on_gpu(k), on_gpu(v), on_gpu(state), true);
  EXPECT_EQ(gpu.y.dtype(), DType::bf16);
  expect_close(gpu.y, cpu.y, 5e-3, "y");
  expect_close(gpu.state, cpu.state, 5e-5, "state");

  const Tensor gy = bf16(random_tensor({batch, time, channels}, 25));
  const Tensor gs = random_tensor({batch, 3, channels}, 26);
  // Both sides differentiate the CPU's y.
  const ops::WkvGrads cpu_grads = ops::wkv_backward(time_decay, time_first, k, v, cpu.y, gy, state, gs);
  const ops::WkvGrads gpu_grads = ops::wkv_backward(on_gpu(time_decay), on_gpu(time_first), on_gpu(k), on_gpu(v),
                                                    on_gpu(cpu.y), on_gpu(gy), on_gpu(state), on_gpu(gs));
  EXPECT_EQ(gpu_grads.k.dtype(), DType::bf16);
  expect_close(gpu_grads.k, cpu_grads.k, 5e-3, "gk");
  expect_close(gpu_grads.v, cpu_grads.v, 5e-3, "gv");
  expect_close(gpu_grads.time_decay, cpu_grads.time_decay, 5e-5, "gw");
  expect_close(gpu_grads.time_first, cpu_grads.time_first, 5e-5, "gu");
  expect_close(gpu_grads.state, cpu_grads.state, 5e-5, "grad state");
}

TEST_F(CudaBf16, CastAndSmallGraphMatchTheCpu) {
  const Tensor x_value = random_tensor({2, 5, 24}, 30), w_value = random_tensor({24, 13}, 31);
  auto run = [&](Device device) {
    ag::Variable x(x_value.to(device), true), w(w_value.to(device), true);
    const ag::Variable h = ag::matmul(ag::cast(x, DType::bf16), ag::cast(w, DType::bf16));
    const ag::Variable s = ag::sigmoid(h);
    const ag::Variable loss = ag::sum_all(ag::mul(s, s));  // s used twice: its gradients are summed
    loss.backward();
    EXPECT_EQ(x.grad().dtype(), DType::f32);
    EXPECT_EQ(w.grad().dtype(), DType::f32);
    return std::vector<Tensor>{loss.data(), x.grad(), w.grad()};
  };
  const std::vector<Tensor> cpu = run(Device::cpu()), gpu = run(Device::cuda(0));
  expect_close(gpu[0], cpu[0], 1e-2, "loss");
  expect_close(gpu[1], cpu[1], 2e-2, "x grad");
  expect_close(gpu[2], cpu[2], 2e-2, "w grad");
}

// bf16 features with an fp32 head whose vocabulary is padded on the device (97 -> 128): the -inf padding of the
// logits leaves the loss and both gradients those of the CPU's bf16 path (chunked and in one chunk).
TEST_F(CudaBf16, PaddedHeadLossMatchesTheCpu) {
  const int64_t vocab = 97, features = 16;
  const Tensor x16 = bf16(random_tensor({2, 7, features}, 40, DType::f32, -2, 2));
  const Tensor w32 = random_tensor({vocab, features}, 41);
  const Tensor targets = testing::random_ids({2, 7}, vocab, 42);
  auto run = [&](Device device, int64_t chunk_rows) {
    ag::Variable x(x16.to(device), true), w(w32.to(device), true);
    const ag::Variable loss = ag::linear_cross_entropy(x, w, targets.to(device), chunk_rows);
    loss.backward();
    return std::vector<Tensor>{loss.data(), x.grad(), w.grad()};
  };
  for (int64_t chunk_rows : {int64_t{3}, int64_t{0}}) {
    SCOPED_TRACE("chunk_rows " + std::to_string(chunk_rows));
    const std::vector<Tensor> cpu = run(Device::cpu(), chunk_rows), gpu = run(Device::cuda(0), chunk_rows);
    EXPECT_EQ(gpu[1].dtype(), DType::bf16);
    EXPECT_EQ(gpu[2].shape(), w32.shape());
    expect_close(gpu[0], cpu[0], 1e-5, "loss");  // fp32 logits: only the GEMM's summation order differs
    expect_close(gpu[1], cpu[1], 1e-2, "x grad");  // dlogits and dx rounded to bf16 on each side
    expect_close(gpu[2], cpu[2], 1e-2, "w grad");
  }
}

// The chunked head + loss checks its targets once per forward, not once per chunk: on the GPU each check is a
// host wait, and 5 chunks here (25 for the 169M model at micro_bsz 16) would stall the stream 5 times. The
// padded bf16 path makes its -inf on the device too, so the forward waits exactly once.
TEST_F(CudaBf16, PaddedHeadLossForwardWaitsOnTheHostOnce) {
  const int64_t vocab = 97, features = 16;
  ag::Variable x(bf16(random_tensor({2, 7, features}, 50, DType::f32, -2, 2)).to(Device::cuda(0)), true);
  ag::Variable w(random_tensor({vocab, features}, 51).to(Device::cuda(0)), true);
  const Tensor targets = testing::random_ids({2, 7}, vocab, 52).to(Device::cuda(0));
  const int64_t before = cuda::host_waits();
  const ag::Variable loss = ag::linear_cross_entropy(x, w, targets, /*chunk_rows=*/3);
  EXPECT_EQ(cuda::host_waits() - before, 1) << "the forward of 5 chunks waited on the host more than once";
  EXPECT_TRUE(std::isfinite(loss.data().item()));
}

}  // namespace
}  // namespace rwkv
